package lockdir

import (
	"context"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// RWLock is a handle on a lock directory that can be held shared (by any
// number of readers together) or exclusive (by one writer, with no
// readers). A plain Lock on the same path is a writer to it, and the two
// interoperate in both directions.
//
// Turns are fair: once a writer waits, new readers queue behind it; when a
// writer leaves, every reader waiting then goes in together, before the
// next writer. Every shared hold has its own record, heartbeat and fencing
// token, and a dead reader is reclaimed like a dead writer.
//
// Each RLock is a hold of its own, even on one handle: RUnlock releases one
// of them. As with sync.RWMutex, a goroutine that holds a shared hold and
// then calls Lock on a lock it reads deadlocks.
type RWLock struct{ c *lockcore.Lock }

// NewRW returns a reader/writer handle on the lock directory at path, in an
// existing directory. It takes options as New does.
func NewRW(path string, opts ...Option) (*RWLock, error) {
	l, err := New(path, opts...)
	if err != nil {
		return nil, err
	}
	return &RWLock{l.c}, nil
}

// RLock waits for a shared hold (queueing behind waiting writers) or until
// ctx is done, and then returns ctx.Err() unchanged.
func (rw *RWLock) RLock(ctx context.Context) error { return rw.c.RLock(ctx) }

// TryRLock takes a shared hold if it can be had now, or returns an error
// matching ErrLocked naming the writer that holds or waits. It waits for
// others at most 1 s, as TryLock does.
func (rw *RWLock) TryRLock() error { return rw.c.TryRLock() }

// RUnlock releases the newest shared hold of this handle (the one whose
// token Token reports); ErrNotHeld if none. It changes the group under the
// breaker guard, so it may wait for a guard as Unlock does after a lapse.
func (rw *RWLock) RUnlock() error { return rw.c.RUnlock() }

// Lock waits for the exclusive hold, or until ctx is done.
func (rw *RWLock) Lock(ctx context.Context) error { return rw.c.Lock(ctx) }

// TryLock takes the exclusive hold if it can be had now, or returns an error
// matching ErrLocked naming the holders. It waits for others at most 1 s,
// as Lock.TryLock does.
func (rw *RWLock) TryLock() error { return rw.c.TryLock() }

// Unlock releases the exclusive hold; it may take as long as Lock.Unlock.
func (rw *RWLock) Unlock() error { return rw.c.Unlock() }

// Token returns the fencing token of the exclusive hold, or else of the
// newest shared hold still held (0 if nothing is held): after RLock, RLock,
// RUnlock, the first RLock's, since RUnlock releases the newest.
func (rw *RWLock) Token() uint64 { return rw.c.Token() }

// Lost returns a channel closed when the exclusive hold (or else the newest
// shared hold still held, as for Token) is found lost; already closed if
// nothing is held, as Lock.Lost is.
func (rw *RWLock) Lost() <-chan struct{} { return rw.c.Lost() }

// Owner returns the record at the lock directory now: a writer's, or the
// anchor of a group of readers (mode "shared").
func (rw *RWLock) Owner() (stale.Owner, error) { return rw.c.Owner() }

// Readers returns the records of the shared holders now.
func (rw *RWLock) Readers() ([]stale.Owner, error) { return rw.c.Readers() }

// Path returns the absolute path of the lock directory.
func (rw *RWLock) Path() string { return rw.c.Path() }
