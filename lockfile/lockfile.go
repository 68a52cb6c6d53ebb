package lockfile

import (
	"context"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// Errors, shared with package lockdir: errors.Is matches either package's.
var (
	// ErrLocked: the lock is held by someone alive (or not proven dead).
	// The error is an *fs.PathError wrapping a *LockedError naming them.
	ErrLocked = lockcore.ErrLocked
	// ErrNotHeld: Unlock on a handle that holds nothing.
	ErrNotHeld = lockcore.ErrNotHeld
	// ErrLost: the hold was lost — its lease lapsed and another holder
	// took the lock — and the lock was left to the new holder.
	ErrLost = lockcore.ErrLost
	// ErrNotLock: something dotlock did not make stands at the lock path
	// (a user's file or directory, a symlink, a FIFO): reported at once,
	// and never removed.
	ErrNotLock = lockcore.ErrNotLock
)

type (
	// LockedError names who is in the way; it matches ErrLocked.
	LockedError = lockcore.LockedError
	// LostError says how a hold was lost; it matches ErrLost.
	LostError = lockcore.LostError
	// BreakError reports a lock whose holder is dead but which this
	// process may not remove (permissions); it wraps the cause.
	BreakError = lockcore.BreakError
	// ForeignError says that another user's file is in the way, which only
	// that user or root may remove (a sticky directory such as /tmp); it
	// names the file and its owner, and matches fs.ErrPermission.
	ForeignError = lockcore.ForeignError
	// Option configures a Lock.
	Option = lockcore.Option
)

// Options; see package lockcore's Config for defaults.
var (
	WithStaleAfter = lockcore.WithStaleAfter // lease for holders on other hosts (default 30s)
	WithHeartbeat  = lockcore.WithHeartbeat  // how often a holder heartbeats (default StaleAfter/4)
	WithGrace      = lockcore.WithGrace      // how long a half-written record counts as being written (default 5s)
	WithPoll       = lockcore.WithPoll       // shortest and longest wait between tries (default 1ms, 50ms)
	WithPerm       = lockcore.WithPerm       // permission bits of the lock file (default 0666, less the umask)
	WithSync       = lockcore.WithSync       // fsync records (default: only on network filesystems)
	WithClock      = lockcore.WithClock      // replace the clock (tests)
	WithChecker    = lockcore.WithChecker    // replace the liveness checker (tests)
	WithOnWait     = lockcore.WithOnWait     // be told who is in the way while waiting
	WithOnBreak    = lockcore.WithOnBreak    // be told when a dead holder's lock is removed
)

// Lock is a handle on a lock file. It is safe for concurrent use; two
// handles on one path exclude each other as two processes do.
type Lock struct{ c *lockcore.Lock }

// New returns a handle on the lock file at path, in an existing directory.
// It takes nothing; call Lock or TryLock.
func New(path string, opts ...Option) (*Lock, error) {
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
