package lockcore

import (
	"context"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// takeover is B6: a lock file's waiter that broke a stale record makes
// its own entry at the path it freed while it still holds the guard,
// rather than after it (as A1..A6). No one else can have held the path
// and left it since B4 published the victim's token — a holder that left
// would have to pass A5, which waits for this guard — so the token is the
// victim's + 1 without A3's read; and no breaker can act on the entry
// until the guard is gone, by which time its record is written, so it
// needs neither A5 nor A6 — if it was written within the guard's
// deadline, after which another host may count the guard abandoned. On
// sshfs a takeover of a dead holder's lock file sends 15 requests fewer
// (the attempt's lookup of the directory, A3's read and the slot chain's
// end, A5's look, A6's read).
type takeover struct {
	e      Entry
	owner  stale.Owner
	rec    []byte // as written, or as we tried to write it (nil: none)
	now    time.Time
	err    error // the write's: the entry is given up
	proved bool  // written before the deadline: held
}

// takeFreed makes the takeover's entry through st, the guard section's
// store, once B4 moved victim to the last-record slot. It returns nil if
// there is nothing to take: the path taken meanwhile (by a create that
// did not wait for the guard), the deadline past, a victim whose token
// cannot be the last one published (not an exclusive hold's record), or
// an error that the next attempt meets again and reports.
func (l *Lock) takeFreed(st Store, victim *stale.Owner, deadline time.Time) *takeover {
	if victim == nil || victim.Mode != stale.ModeExclusive || victim.Token == 0 {
		return nil
	}
	now := l.cfg.Clock.Now()
	if now.After(deadline) {
		return nil
	}
	token, err := nextToken(victim.Token, 1)
	if err != nil {
		return nil
	}
	e, _, err := l.createExcl(st.Create, st.Path())
	if err != nil {
		return nil
	}
	if l.cfg.AfterCreate != nil { // model: B6, a reply lost
		if herr := l.cfg.AfterCreate(); herr != nil {
			e.Close() // the reply was "lost": the entry is judged as any other
			return nil
		}
	}
	t := &takeover{e: e, now: now}
	t.owner, t.rec, t.err = l.writeHold(e, token, now) // model: B6w
	t.proved = t.err == nil && !l.cfg.Clock.Now().After(deadline)
	return t
}

// tookOver turns a takeover into a hold, once the guard section is over:
// at once if it was proved; else by A5 and A6, as any attempt's entry.
// A failed write gives the entry up.
func (l *Lock) tookOver(ctx context.Context, ws *waitState, t *takeover) (*hold, error) {
	if t.err != nil {
		t.e.Close()
		l.abandon(ctx, ws, t.rec)
		return nil, t.err
	}
	if !t.proved {
		h, _, err := l.verify(ctx, ws, t.e, l.store, t.owner, t.rec, t.now)
		return h, err
	}
	h := l.newHold(t.owner, t.e, t.now)
	if id, ok := localEntryID(t.e, l.local); ok {
		h.id, h.idKnown = id, true
	}
	return h, nil
}
