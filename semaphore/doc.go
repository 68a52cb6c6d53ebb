// Package semaphore provides a counting lock across processes and hosts
// sharing a filesystem: at most N holders at once ("at most 4 jobs talk to
// the licence server"), with a crashed holder's place reclaimed.
//
// A semaphore is a directory of N slots, each an ordinary dotlock lock
// file, so every slot has what a lock has: an owner record naming its
// holder, reclaim of a dead holder's slot and never of a live one's, a
// lease for holders on other hosts, a fencing token, and Lost. Acquire
// takes a free slot if no one waits; otherwise it takes its turn in a line
// (a lock directory, whose queue serves waiters in arrival order across
// processes and hosts). Only the waiter at the head of the line looks for
// a free slot, so a freed slot wakes one waiter, not all of them: it is
// woken by a release on its host (Linux: inotify), and looks again at
// most about 20 times a second for releases elsewhere.
//
//	sem, err := semaphore.New("/shared/licence", 4)
//	if err != nil { ... }
//	slot, err := sem.Acquire(ctx)
//	if err != nil { ... }
//	defer slot.Release()
//
// On disk, in the semaphore's directory: "size.N", a directory whose name
// records N (made by the first user; a user that asks for another N gets
// an error, never more holders than the first said), "slot.0" to
// "slot.N-1" (lock files, each with its lockfile side files: see package
// lockfile) and "turn" (the waiters' line: a lock directory). To change N,
// stop every user and remove the semaphore's directory.
//
// Caveats: those of package lockfile (leases, mount options). The line is
// fair between waiters; TryAcquire does not queue, and fails while anyone
// waits.
package semaphore
