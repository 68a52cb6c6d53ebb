package lockdir

import (
	"context"

	"github.com/dotlock/dotlock/stale"
)

// Shared holds. A lock directory can be held shared (by any number of
// readers together) or exclusive (by one writer, with no readers), through
// the same handle and across processes and hosts.
//
// Turns are fair: once a writer waits, new readers queue behind it; when a
// writer leaves, every reader waiting then goes in together, before the
// next writer. Every shared hold has its own record, heartbeat and fencing
// token, and a dead reader is reclaimed like a dead writer.
//
// Each RLock is a hold of its own, even on one handle: RUnlock releases one
// of them. As with sync.RWMutex, a goroutine that holds a shared hold and
// then calls Lock on a lock it reads deadlocks.

// RLock waits for a shared hold (queueing behind waiting writers) or until
// ctx is done, and then returns ctx.Err() unchanged.
func (l *Lock) RLock(ctx context.Context) error { return l.c.RLock(ctx) }

// TryRLock takes a shared hold if it can be had now, or returns an error
// matching ErrLocked naming the writer that holds or waits. It waits for
// others at most 1 s, as TryLock does.
func (l *Lock) TryRLock() error { return l.c.TryRLock() }

// RUnlock releases the newest shared hold of this handle (the one whose
// token Token reports); ErrNotHeld if none. It changes the group under the
// breaker guard, so it may wait for a guard as Unlock does after a lapse.
func (l *Lock) RUnlock() error { return l.c.RUnlock() }

// Readers returns the records of the shared holders now.
func (l *Lock) Readers() ([]stale.Owner, error) { return l.c.Readers() }
