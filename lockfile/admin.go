package lockfile

import (
	"context"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// Administration, for tools such as the dotlock command: see package
// lockcore's admin.go for the protocol steps each one reuses.
type (
	// Status is what is at a lock path now: who holds it, with the
	// checker's verdict on each holder.
	Status = lockcore.Status
	// Holder is one holder with the checker's verdict.
	Holder = lockcore.Holder
	// Broken says what Break removed.
	Broken = lockcore.Broken
)

// Status reports who holds the lock now (a free lock is not an error).
func (l *Lock) Status() (Status, error) { return l.c.Status() }

// HandOver gives this handle's hold to the process pid on this host: the
// record is replaced (under the breaker guard, after checking it is still
// this hold's) by one naming pid, with the same UUID and token. The handle
// then holds nothing. The lock is reclaimed when pid exits; Adopt keeps its
// heartbeat going for judges on other hosts; ReleaseFor releases it.
func (l *Lock) HandOver(pid int) (stale.Owner, error) { return l.c.HandOver(pid) }

// Adopt makes this handle heartbeat the hold with the given UUID (one that
// HandOver gave away) until Unlock, or until it is found lost (Lost).
func (l *Lock) Adopt(uuid string) (stale.Owner, error) { return l.c.Adopt(uuid, false) }

// ReleaseFor releases the hold whose record is o, from any process: a
// checked release (ErrLost if the lock is no longer o's hold).
func (l *Lock) ReleaseFor(o stale.Owner) error { return l.c.ReleaseFor(o) }

// Break removes the lock if its holder is dead (a holder on another host:
// once its heartbeat has been still for the lease), or with force whatever
// its holder's state, through the protocol's guarded breaking steps. A
// holder that is alive yields an error matching ErrLocked.
func (l *Lock) Break(ctx context.Context, force bool) (Broken, error) { return l.c.Break(ctx, force) }
