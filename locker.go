package dotlock

import "context"

// Locker is what both lock kinds offer: *dotlock.Mutex and *dotlock.RWMutex.
type Locker interface {
	// TryLock takes the lock if it can be had now, else returns an error
	// matching ErrLocked.
	TryLock() error
	// Lock waits until it holds the lock, or returns ctx.Err() unchanged
	// once ctx is done.
	Lock(ctx context.Context) error
	// Unlock releases the lock (ErrNotHeld, ErrLost).
	Unlock() error
	// Token is the current hold's fencing token, 0 if none.
	Token() uint64
	// Lost is closed when the current hold is found lost.
	Lost() <-chan struct{}
}

var (
	_ Locker = (*Mutex)(nil)
	_ Locker = (*RWMutex)(nil)
)
