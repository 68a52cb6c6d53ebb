package lockcore

import (
	"context"
	"errors"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// tryWait bounds how long TryLock and TryRLock wait for others: for a
// breaker guard held by another handle or process (a break or a handoff
// under way: A5, and the guard that every change of a shared group
// needs), and for the cleanup of an attempt they give up (which goes on in
// the background; see cleanup). A try never waits out a grace period, a
// lease, or a guard left behind by a breaker that died: once tryWait has
// passed it reports the guard, as ErrLocked. Besides this, a try takes
// the time of its own filesystem operations, which no bound can shorten
// (a hung network filesystem).
const tryWait = time.Second

// tryContext is the context of a try's waits.
func tryContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), tryWait)
}

// tryErr is err as a try reports it: a wait that ran out of tryWait (for
// the breaker guard: a try waits for nothing else) is ErrLocked, naming the
// guard's holder if its record says who it is.
func (l *Lock) tryErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
		return err
	}
	blk := &LockedError{Cause: dotlock.GuardHeld, Reason: "the breaker guard " + l.guard.Path() + " stayed held for " + tryWait.String() + " (a break or a handoff under way)"}
	if data, rerr := l.guard.Read(); rerr == nil {
		if o, perr := stale.Parse(data); perr == nil {
			blk.Owners = []stale.Owner{o}
		}
	}
	return blk
}
