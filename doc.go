// Package dotlock holds what both lock packages share: the errors they
// return, the options they take, and the Locker interface they satisfy.
// The locks themselves are in package lockfile (a lock file created with
// O_CREATE|O_EXCL) and package lockdir (a lock directory created with
// mkdir, with shared holds besides); package stale reads owner records and
// judges whether their holders live.
//
//	l, err := lockfile.New("/shared/jobs/x.lock", dotlock.WithStaleAfter(time.Minute))
//	...
//	if err := l.TryLock(); errors.Is(err, dotlock.ErrLocked) {
//		var le *dotlock.LockedError
//		errors.As(err, &le) // le.Owners: who holds it
//	}
//
// Every error a lock returns for a path is an *fs.PathError naming it;
// match the sentinels with errors.Is and the detail types with errors.As.
// docs/PROTOCOL.md states the guarantees and their limits.
package dotlock
