package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// takeover is B6: a lock file's waiter that broke a stale record makes
// its own entry at the path it freed while it still holds the guard,
// rather than after it (as A1..A6). No one else can have held the path
// and left it since B4 published the victim's token — a holder that left
// would have to pass A5 (or B6), which needs this guard gone — so the
// token is the victim's + 1 without A3's read, where the chain is the
// victim's slot alone; and no breaker can act on the entry
// until the guard is gone, by which time its record is written, so it
// needs neither A5 nor A6 — if it was created and written within the
// guard's deadline, after which another host may count the guard
// abandoned and act as if it were gone. On sshfs a takeover of a dead
// holder's lock file sends 14 requests fewer than an acquire after B5.
type takeover struct {
	e      Entry
	owner  stale.Owner
	rec    []byte // as written, or as we tried to write it (nil: none)
	now    time.Time
	late   bool  // the create returned past the deadline: as A1's entry, A3 on
	err    error // the write's: the entry is given up
	proved bool  // written before the deadline: held
}

// takeFreed makes the takeover's entry through st, the guard section's
// store, once B4 moved victim to the last-record chain. It returns nil if
// there is nothing to take: the path taken meanwhile (by a create that
// did not wait for the guard), the deadline past, a victim whose token
// cannot be the last one published (not an exclusive hold's record), a
// chain of more than one slot, or an error that the next attempt meets
// again and reports.
func (l *Lock) takeFreed(st Store, victim *stale.Owner, deadline time.Time) *takeover {
	if victim == nil || victim.Mode != stale.ModeExclusive || victim.Token == 0 {
		return nil
	}
	if l.cfg.Clock.Now().After(deadline) {
		return nil
	}
	// B4 moved the victim into the first slot it may replace: with no
	// second slot, that is P.last, and the chain A3 would read is the
	// victim alone. Another slot (another user's, in a sticky directory)
	// may hold a greater token: a victim that restarted at 1 after P.last
	// was removed by hand, a record planted with a low one. A3 reads it.
	if _, err := st.opDir().lstat(lastSlot(st.Path(), 1)); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	token, err := nextToken(victim.Token, 1)
	if err != nil {
		return nil
	}
	// The entry's descriptor stays open through B5, whose read back of
	// the guard it moved aside needs one: one is kept spare until then,
	// or there is no takeover (out of descriptors, B5 would fail and leave
	// the guard naming this process while its retries go on).
	spare := spareDescriptor()
	if spare == nil {
		return nil
	}
	defer spare()
	e, _, err := l.createExcl(st.Create, st.Path())
	if err != nil {
		return nil
	}
	if l.cfg.AfterCreate != nil { // model: B6c, a reply lost
		if herr := l.cfg.AfterCreate(); herr != nil {
			e.Close() // the reply was "lost": the entry is judged as any other
			return nil
		}
	}
	now := l.cfg.Clock.Now()
	t := &takeover{e: e, now: now}
	if now.After(deadline) {
		// Paused, or a create that hung (a partition), past the deadline:
		// another host may have counted the guard abandoned, held P and
		// left it, publishing a greater token than the victim's.
		t.late = true
		return t
	}
	t.owner, t.rec, t.err = l.writeHold(e, token, now) // model: B6w
	t.proved = t.err == nil && !l.cfg.Clock.Now().After(deadline)
	return t
}

// tookOver turns a takeover into a hold, once the guard section is over
// (released: B5's first try left no guard of ours): at once if it was
// proved; else as any attempt's entry (A5 and A6, or A3 on for a late
// create). A failed write gives the entry up, and so does a guard left
// standing (out of descriptors, say: the entry's own held the one B5
// needed): a hold would wait for its own guard's retries, or begin with
// every acquirer on this host stopped behind it.
func (l *Lock) tookOver(ctx context.Context, ws *waitState, t *takeover, released bool) (*hold, error) {
	switch {
	case t.err != nil:
		t.e.Close()
		l.abandon(ctx, ws, t.rec)
		return nil, t.err
	case !released:
		t.e.Close()
		l.abandon(ctx, ws, t.rec)
		return nil, nil
	case t.late:
		h, _, err := l.complete(ctx, ws, t.e, l.store)
		return h, err
	case !t.proved:
		h, _, err := l.verify(ctx, ws, t.e, l.store, t.owner, t.rec, t.now)
		return h, err
	}
	h := l.newHold(t.owner, t.e, t.now)
	if id, ok := localEntryID(t.e, l.local); ok {
		h.id, h.idKnown = id, true
	}
	return h, nil
}
