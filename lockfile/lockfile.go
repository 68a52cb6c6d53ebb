package lockfile

import (
	"context"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// Lock is a handle on a lock file. It is safe for concurrent use; two
// handles on one path exclude each other as two processes do.
type Lock struct{ c *lockcore.Lock }

// New returns a handle on the lock file at path, in an existing directory.
// It takes nothing; call Lock or TryLock.
func New(path string, opts ...dotlock.Option) (*Lock, error) {
	c, err := lockcore.New(path, func(abs string) lockcore.Store { return lockcore.NewFileStore(abs) }, opts...)
	if err != nil {
		return nil, err
	}
	return &Lock{c}, nil
}

// TryLock takes the lock if it is free or its holder is proven dead, and
// otherwise returns an error matching ErrLocked that names the holder. It
// waits for others at most 1 s in all: a breaker guard (P.break) held that
// long — a break or handoff under way, or a guard left behind — is
// reported as ErrLocked naming it. Its own filesystem operations take what
// they take.
func (l *Lock) TryLock() error { return l.c.TryLock() }

// Lock waits, with backoff and jitter, until it holds the lock, or until ctx
// is done and then returns ctx.Err() unchanged.
func (l *Lock) Lock(ctx context.Context) error { return l.c.Lock(ctx) }

// Unlock releases the lock: ErrNotHeld if this handle holds nothing, ErrLost
// if the record at the path is no longer this hold's (it is left alone).
// It takes a few filesystem operations; at worst, a release failing with
// transient errors is retried for up to StaleAfter (at least twice the
// grace period), and one whose lease lapsed first waits for a breaker
// guard held by others, up to 4×StaleAfter for one left behind.
func (l *Lock) Unlock() error { return l.c.Unlock() }

// Token returns the fencing token of the current hold (0 if none): greater
// than every earlier hold's of this path, across crashes and takeovers.
func (l *Lock) Token() uint64 { return l.c.Token() }

// Lost returns a channel closed when the current hold is found lost (at a
// heartbeat). If nothing is held — before the first hold, and after
// Unlock — the channel is already closed: a worker that checks it before
// acting on what the lock protects stops. A hold's channel is not closed
// by Unlock, only by a loss.
func (l *Lock) Lost() <-chan struct{} { return l.c.Lost() }

// Owner returns the record of whoever holds the path now.
func (l *Lock) Owner() (stale.Owner, error) { return l.c.Owner() }

// Path returns the absolute path of the lock file.
func (l *Lock) Path() string { return l.c.Path() }
