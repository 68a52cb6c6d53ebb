package dotlock

import (
	"context"

	"github.com/dotlock/dotlock/internal/handle"
	"github.com/dotlock/dotlock/stale"
)

func init() {
	handle.Mutex = func(e handle.Engine) any { return &Mutex{e} }
	handle.RWMutex = func(e handle.Engine) any { return &RWMutex{Mutex{e}} }
}

// Mutex is a handle on one lock path, held exclusively: lockfile.New makes
// one on a lock file, and the Mutex inside lockdir.New's RWMutex is one on
// a lock directory. It is safe for concurrent use; two handles on one path
// exclude each other as two processes do. The zero Mutex is not usable.
type Mutex struct{ e handle.Engine }

// TryLock takes the lock if it is free or its holder is proven dead, and
// otherwise returns an error matching ErrLocked that names the holder. It
// waits for others at most 1 s in all: a breaker guard (P.break) held that
// long — a break or handoff under way, or a guard left behind — is
// reported as ErrLocked naming it. Its own filesystem operations take what
// they take.
func (m *Mutex) TryLock() error { return m.e.TryLock() }

// Lock waits, with backoff and jitter, until it holds the lock, or until ctx
// is done and then returns ctx.Err() unchanged.
func (m *Mutex) Lock(ctx context.Context) error { return m.e.Lock(ctx) }

// Unlock releases the lock: ErrNotHeld if this handle holds nothing, ErrLost
// if the record at the path is no longer this hold's (it is left alone).
// It takes a few filesystem operations; at worst, a release failing with
// transient errors is retried for up to StaleAfter (at least twice the
// grace period), and one whose lease lapsed first waits for a breaker
// guard held by others, up to 4×StaleAfter for one left behind.
func (m *Mutex) Unlock() error { return m.e.Unlock() }

// Token returns the fencing token of the current hold (0 if none): greater
// than every earlier hold's of this path, across crashes and takeovers.
// With several shared holds on one handle, it is the newest one's.
func (m *Mutex) Token() uint64 { return m.e.Token() }

// Lost returns a channel closed when the current hold is found lost (at a
// heartbeat). If nothing is held — before the first hold, and after
// Unlock — the channel is already closed: a worker that checks it before
// acting on what the lock protects stops. A hold's channel is not closed
// by Unlock, only by a loss.
func (m *Mutex) Lost() <-chan struct{} { return m.e.Lost() }

// Owner returns the record of whoever holds the path now (the writer, for
// a lock directory).
func (m *Mutex) Owner() (stale.Owner, error) { return m.e.Owner() }

// Path returns the absolute path of the lock file or lock directory.
func (m *Mutex) Path() string { return m.e.Path() }

// RWMutex is a handle on a lock directory (lockdir.New), held shared by any
// number of readers together or exclusively by one writer with no
// readers, through the same handle and across processes and hosts. It has
// Mutex's methods, which take and release the exclusive hold, and the
// shared ones below. A lock file cannot be held shared: that takes one
// record per reader, which a lock directory holds.
//
// Turns are fair: once a writer waits, new readers queue behind it; when a
// writer leaves, every reader waiting then goes in together, before the
// next writer. Every shared hold has its own record, heartbeat and fencing
// token, and a dead reader is reclaimed like a dead writer.
//
// Each RLock is a hold of its own, even on one handle: RUnlock releases
// one of them. As with sync.RWMutex, a goroutine that holds a shared hold
// and then calls Lock on the lock it reads deadlocks.
type RWMutex struct{ Mutex }

// RLock waits for a shared hold (queueing behind waiting writers) or until
// ctx is done, and then returns ctx.Err() unchanged.
func (m *RWMutex) RLock(ctx context.Context) error { return m.e.RLock(ctx) }

// TryRLock takes a shared hold if it can be had now, or returns an error
// matching ErrLocked naming the writer that holds or waits. It waits for
// others at most 1 s, as TryLock does.
func (m *RWMutex) TryRLock() error { return m.e.TryRLock() }

// RUnlock releases the newest shared hold of this handle (the one whose
// token Token reports); ErrNotHeld if none. It changes the group under the
// breaker guard, so it may wait for a guard as Unlock does after a lapse.
func (m *RWMutex) RUnlock() error { return m.e.RUnlock() }

// Readers returns the records of the shared holders now.
func (m *RWMutex) Readers() ([]stale.Owner, error) { return m.e.Readers() }
