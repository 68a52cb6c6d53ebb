// Package dotlock holds the lock handles and what both lock packages
// share: the errors they return and the options they take. Package
// lockfile makes a Mutex on a lock file (created with O_CREATE|O_EXCL);
// package lockdir makes an RWMutex on a lock directory (created with
// mkdir), which can also be held shared. Package stale reads owner records
// and judges whether their holders live.
//
//	l, err := lockfile.New("/shared/jobs/x.lock", dotlock.WithStaleAfter(time.Minute))
//	...
//	if err := l.TryLock(); errors.Is(err, dotlock.ErrLocked) {
//		var le *dotlock.LockedError
//		errors.As(err, &le) // le.Owners: who holds it
//	}
//
// Every error a lock returns for a path is an *fs.PathError naming it
// (but for ctx.Err(), which Lock and RLock return unchanged); match the
// sentinels with errors.Is and the detail types with errors.As.
// docs/PROTOCOL.md states the guarantees and their limits.
package dotlock
