// Package lockfile provides locks that work across processes and across
// hosts sharing a filesystem (NFS, SMB, sshfs, cluster filesystems), where
// flock and fcntl locks are missing, local-only or hang.
//
// The lock is a file created with O_CREATE|O_EXCL, which is atomic on every
// such filesystem (NFSv3 and later). Its content is an owner record (see
// package stale) naming the holder, so `cat` shows who holds it, and so a
// waiter can tell a crashed holder from a live one: a dead holder's lock is
// reclaimed, a live one's never.
//
//	l, err := lockfile.New("/shared/jobs/x.lock")
//	if err != nil { ... }
//	if err := l.Lock(ctx); err != nil { ... }
//	defer l.Unlock()
//	write(data, l.Token()) // storage rejects tokens older than the newest it saw
//
// New returns a *dotlock.Mutex: the handle types, the errors and the
// options are package dotlock's, shared with package lockdir. This package
// makes the handle and says what it puts on disk.
//
// Beside the lock file live "x.lock.last" (the record of the last hold,
// which carries the fencing-token sequence), briefly "x.lock.break" (the
// guard taken while removing a dead holder's lock) and, once there were
// waiters, "x.lock.want" (waiters announce themselves there, so that a
// process that releases and comes straight back lets them in first; it is
// removed when such a process finds no one waiting). Do not delete
// x.lock.last: the tokens would start again from 1.
//
// Nothing dotlock did not make is ever removed, moved or followed: a
// user's file or directory at the lock path, a symlink or a FIFO there or
// beside it, is reported at once with an error matching ErrNotLock.
//
// A waiter is woken by the release itself and, when the holder runs on the
// same host, by its exit (Linux: inotify and pidfd); otherwise, and for
// releases on other hosts of a network filesystem, it polls with backoff
// (WithPoll).
//
// Caveats. A holder on another host is judged by its lease: if it stops
// heartbeating for longer than WithStaleAfter (paused, partitioned), it
// loses the lock — it learns so through Lost and ErrLost, and its fencing
// token is older than the new holder's. On NFS, mount without lookupcache
// of negative entries (lookupcache=positive or none) for prompt takeovers;
// see docs/PROTOCOL.md for filesystems and options. Package lockdir offers
// the same locks as directories, and shared (reader) locks.
package lockfile
