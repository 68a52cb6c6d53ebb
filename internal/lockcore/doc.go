// Package lockcore is the lock protocol shared by packages lockfile and
// lockdir: acquisition with backoff and wake-ups, the breaker guard, the
// heartbeat, fencing tokens and checked release, written once over the Store
// primitive. docs/PROTOCOL.md explains it; the step names there (A1..A6,
// B1..B6, H1..H3, R1..R3, S1..S6, W1..W6) appear in the comments here, and
// label the steps of its model, docs/model/dotlock.pml (which splits some:
// A1lost, B1w, B1v, B2, B4tmp, B6c, B6w; "model: X" below names them).
//
// The engine is split by phase, one file each:
//
//	lock.go         the handle (Lock), a hold, New
//	handle.go       accessors: Path, Token, Lost, Owner, ...
//	acquire.go      TryLock, Lock: one attempt, create, complete (A1..A6)
//	wait.go         a waiter's state, wake-ups and backoff (W1..W3)
//	handoff.go      P.want and the releaser's yield (W4)
//	line.go         the process's line for a lock directory (W5)
//	hostline.go     the host's line for a lock file on a network filesystem (W6)
//	judge.go        judging the record at the path, breaking it (B3, B4)
//	guard.go        the breaker guard P.break (B1, B2, B5, A5)
//	heartbeat.go    the heartbeat (H1..H3)
//	release.go      Unlock: the checked release (R1..R3)
//	retry.go        retries of cleanups that must not be given up
//	write.go        writing records into new entries
//	rw.go           shared mode: RLock, TryRLock, RUnlock, Readers
//	rw_join.go      a reader joining a group (S1)
//	rw_queue.go     the queue P.queue and its records (S2)
//	rw_wait.go      waiting in the queue until handed the lock (S3)
//	rw_schedule.go  handing a free P to the queue (S4), dissolving (S5)
//	rw_judge.go     judging a group, repairing its anchor (S6)
//	store.go        the Store primitive: FileStore (lockfile)
//	dirstore.go     DirStore (lockdir)
package lockcore
