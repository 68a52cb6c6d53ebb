// Package lockdir provides locks that work across processes and across
// hosts sharing a filesystem (NFS, SMB, sshfs, cluster filesystems), where
// flock and fcntl locks are missing, local-only or hang.
//
// The lock is a directory created with os.Mkdir, which is atomic on every
// filesystem, including old NFS versions and SMB shares where O_EXCL is not
// to be trusted. The owner record (see package stale) is the file "owner"
// inside it; `cat x.lock/owner` shows who holds the lock. Other names inside
// the directory are reserved for shared (reader) holders.
//
//	l, err := lockdir.New("/shared/jobs/x.lock")
//	if err != nil { ... }
//	if err := l.Lock(ctx); err != nil { ... }
//	defer l.Unlock()
//
// New returns a *dotlock.RWMutex: a dotlock.Mutex that can also be held
// shared. The handle types, the errors and the options are package
// dotlock's, shared with package lockfile.
//
// A dead holder's lock is reclaimed, a live one's never; a holder on
// another host is judged by its lease (WithStaleAfter), and learns through
// Lost and ErrLost when it loses the lock. Beside the directory live
// "x.lock.last" (the last hold's record, which carries the fencing-token
// sequence) and, briefly, "x.lock.break" (the guard taken while removing a
// dead holder's lock), and "x.lock.queue" while anyone waits: waiters
// queue there and are handed the lock in turn (the writers of one process
// wait in line in memory and queue one at a time, and so do its readers;
// see docs/PROTOCOL.md, W5). A waiter is woken by the handoff and by a
// local holder's exit (Linux: inotify and pidfd), and polls with backoff
// (WithPoll) for what happens on other hosts.
// docs/PROTOCOL.md states the guarantees and limits.
//
// Nothing dotlock did not make is ever removed, moved or followed: a
// directory at the lock path holding anything but the lock's own records
// (your directory, say: `dotlock /tmp cmd` is refused), a file, a symlink
// or a FIFO there or beside it, is reported at once with an error matching
// ErrNotLock, and nothing is ever removed recursively.
//
// Shared locks: the same handle can also be held shared (RLock), with
// fair turns between readers and writers (see dotlock.RWMutex); OpenRead, OpenWrite,
// ReadFile, WriteFile and Transform guard a data file with it.
//
// Caveats. A holder on another host loses the lock if it stops heartbeating
// for longer than WithStaleAfter. On NFS, mount with lookupcache=positive
// (or none) and keep close-to-open consistency (never nocto); on sshfs,
// dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0 makes
// takeovers prompt. mkdir is atomic even on NFSv2, where O_EXCL is not.
package lockdir
