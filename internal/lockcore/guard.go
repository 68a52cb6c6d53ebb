package lockcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// guardSuffix names P.break, the breaker guard.
const guardSuffix = ".break"

var errGuardBusy = errors.New("breaker guard busy")

// errNoGuard wraps the ErrNotLock of a section that could not begin
// because something not dotlock's stands at P.break: no one can hold the
// guard, so no change of the holder set can be under way, and what must
// not be left behind (a reader's record, a queue record naming this live
// process) may go without it.
var errNoGuard = errors.New("no guard to be had")

// underGuard runs fn under the breaker guard, waiting while it is busy.
func (l *Lock) underGuard(ctx context.Context, ws *waitState, fn func(deadline time.Time) error) error {
	return l.underGuardIn(ctx, ws, func(deadline time.Time, _ *opDir) error { return fn(deadline) })
}

// underGuardIn is underGuard whose fn is given the section's directory
// (withGuardIn).
func (l *Lock) underGuardIn(ctx context.Context, ws *waitState, fn func(deadline time.Time, o *opDir) error) error {
	for {
		err := l.withGuardIn(ctx, ws, fn)
		if !errors.Is(err, errGuardBusy) {
			return err
		}
		if err := ws.pauseGuard(ctx); err != nil {
			return err
		}
	}
}

// withGuard runs fn while holding the breaker guard (B1, B2, B5). fn must
// not act after deadline: a guard held for longer may have been broken as
// stale by another host. It returns errGuardBusy if the guard is held by
// someone alive.
func (l *Lock) withGuard(ctx context.Context, ws *waitState, fn func(deadline time.Time) error) error {
	return l.withGuardIn(ctx, ws, func(deadline time.Time, _ *opDir) error { return fn(deadline) })
}

// withGuardIn is withGuard whose fn is given the directory the section
// works in (nil: by name), for its own calls beside the lock.
//
// The section reaches the guard through that directory, opened for it (an
// opDir: on FUSE), rather than by name, which looks the directory up
// again at each call: six lookups a section where one now does. fn's own
// calls beside the lock go through it too (a shared hold's group
// changes, rwIn): on sshfs a shared hold sends 123 requests where it sent
// 149 (TestSharedHoldLooksUpItsDirectory).
func (l *Lock) withGuardIn(ctx context.Context, ws *waitState, fn func(deadline time.Time, o *opDir) error) error {
	_, err := l.withGuardReleased(ctx, ws, fn)
	return err
}

// withGuardReleased is withGuardIn that also reports whether the guard
// was gone when it returned: B5's first try released it (or found it no
// longer ours). Its retries otherwise go on in the background, while the
// guard still names this process.
func (l *Lock) withGuardReleased(ctx context.Context, ws *waitState, fn func(deadline time.Time, o *opDir) error) (released bool, err error) {
	dir := openOpDir(l.guard.Path())
	defer dir.close() // after b5 (deferred below): its first try uses g
	g := l.guard.at(dir)
	e, held, err := l.createExcl(g.Create, l.guard.Path())
	if err != nil {
		if !held {
			return false, err // no permission to create the guard, or worse
		}
		if _, err := l.guardStale(ws); err != nil {
			if errors.Is(err, ErrNotLock) {
				return false, fmt.Errorf("%w: %w", errNoGuard, err)
			}
			return false, err
		}
		return false, errGuardBusy // held, or just broken: the caller comes round again
	}
	now := l.cfg.Clock.Now()
	o, err := stale.Self(0, stale.ModeBreaker, now)
	if err != nil {
		e.Close()
		os.Remove(l.guard.Path())
		return false, err
	}
	rec := o.Marshal()
	_, werr := e.WriteAt(rec, 0) // model: B1w
	if werr == nil && l.sync {
		werr = e.Sync()
	}
	// B1 (below): on a local filesystem the guard is recognised by its
	// inode, pinned while the entry is open.
	at, known := false, false
	if id, ok := localEntryID(e, l.local); ok && werr == nil {
		at, known = idAt(id, l.guard.Path())
	}
	e.Close()
	b5 := func() bool { return l.releaseGuard(ctx, ws, g, rec, o.UUID, werr != nil) }
	if werr != nil {
		b5()
		return false, &fs.PathError{Op: "write", Path: l.guard.Path(), Err: unwrapPath(werr)}
	}
	// B1 (model: B1v): verify, as A6 does for the lock. Until written, our
	// guard was empty, and an observer that had watched an earlier empty
	// guard (a creator's whose reply was lost, or a breaker's paused past
	// the grace period) may have taken ours for it and broken it (P5). Act
	// only if the guard is ours now; a breaker that moves it later finds
	// it changed and puts it back.
	if known && !at {
		return false, errGuardBusy // not ours: leave it alone
	}
	if !known {
		data, err := g.Read()
		// An SMB client's EINVAL (replacedFile) says only that it holds
		// an older file once at this name: ours may be there.
		undecided := undecidedGone(err)
		if !undecided && (errors.Is(err, fs.ErrNotExist) || (err == nil && !bytes.Equal(data, rec))) {
			return false, errGuardBusy // not ours: leave it alone
		}
		if err != nil {
			b5()
			if undecided {
				return false, errGuardBusy
			}
			return false, err
		}
	}
	defer func() { released = b5() }()
	return false, fn(now.Add(l.guardLease()/2), dir)
}

// releaseGuard is B5: release the guard only if it is still ours, rec
// (or still empty, if our write failed: ENOSPC); tried again after a
// transient error, since a guard left behind names this live process and
// would stop every acquirer on this host (A5). The first try is made here,
// unless the caller is out of time: it waits for nothing but the
// filesystem, and is nearly always the only one (a goroutine for it cost
// a wake-up and a switch, twice per shared hold). Only retries go on in
// the background.
//
// The first try is the section's (g, the guard reached through the
// section's directory); the retries, after it, open the directory again
// (or go by name: FileStore.Retire).
//
// It reports whether the first try left no guard of ours standing.
func (l *Lock) releaseGuard(ctx context.Context, ws *waitState, g Store, rec []byte, uuid string, unwritten bool) bool {
	check := func(moved []byte) bool {
		return mine(moved, rec, uuid) || (unwritten && len(moved) == 0)
	}
	retire := func(context.Context) error {
		return doneUnlessLeft(l.guard.Retire(false, check))
	}
	if ctx.Err() == nil {
		err := doneUnlessLeft(g.Retire(false, check))
		if err == nil || permanent(err) {
			return err == nil
		}
	}
	cctx, cancel := ws.cleanupCtx(ctx)
	defer cancel()
	l.cleanup(cctx, retire)
	return false
}

// guardLease is how long a remote breaker's guard stays unchanged before it
// counts as abandoned: longer than a holder's lease, since a breaker must not
// lose the guard while it works (it acts only within half of this), and a
// guard is left behind only by a breaker that died during a break.
func (l *Lock) guardLease() time.Duration { return 4 * l.cfg.StaleAfter }

// guardStale (model: B2) judges the guard's holder and breaks the guard if
// it is stale, by the same rules as a lock's holder. Guard holders do not
// heartbeat: a guard unchanged for the guard's lease is stale, unless its
// holder is proven dead sooner.
func (l *Lock) guardStale(ws *waitState) (bool, error) {
	data, err := l.guard.Read()
	if undecidedGone(err) {
		// SMB: this client holds an older guard's file once at this
		// name; the guard is there (the caller saw it). Look again later.
		return false, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		ws.guardObs.Reset() // as in inspect
		foreignGuards.Delete(l.guard.Path())
		return true, nil
	}
	if err != nil {
		if _, wait := l.notRecordYet(&ws.guardObs, err); wait {
			return false, nil // held, as far as we know yet
		}
		return false, err
	}
	ob, done := guardObservation(ws, l.guard.Path())
	_, why, blk := l.judge(ob, l.guard.Path(), data, l.cfg.Grace, l.guardLease())
	done()
	if blk != nil && !l.orphanGuard(ws, data) {
		return false, nil
	}
	if blk != nil {
		why = "its holder has not changed it for the guard's lease"
	}
	ok, err := l.guard.Retire(false, func(moved []byte) bool { return bytes.Equal(moved, data) })
	if err != nil {
		// Another user's guard in a sticky directory: no retry helps (see
		// foreignErr); said at once, with whose file it is.
		return false, &BreakError{Reason: "breaker guard " + l.guard.Path() + " left behind: " + why, Err: unwrapPath(err)}
	}
	return ok, nil
}

// orphanGuard reports whether a guard whose holder runs on this host has
// stayed unchanged for the guard's lease. No live breaker relies on its
// guard for longer than half of that (B3, H2, R2 check their deadline), so
// it is an orphan: a breaker that gave up its guard at B1's verify while
// another breaker, judging the guard empty, moved it aside and then put it
// back. Without this, processes on the holder's host would wait for it as
// long as the holder runs (found by the model: docs/model).
func (l *Lock) orphanGuard(ws *waitState, data []byte) bool {
	o, err := stale.Parse(data)
	if err != nil || l.cfg.Checker.Judge(o).Verdict != stale.Alive {
		ws.orphanObs.Reset()
		return false
	}
	return ws.orphanObs.See(string(data), l.cfg.Clock.Now()) >= l.guardLease()
}

// waitGuardClear returns once no breaker guard exists (A5). It looks
// through o (nil: by name).
func (l *Lock) waitGuardClear(ctx context.Context, ws *waitState, o *opDir) error {
	var gw waitState
	gw.l = l
	for {
		if _, err := o.lstat(l.guard.Path()); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if stale, err := l.guardStale(ws); err != nil {
			return err
		} else if stale {
			continue
		}
		if err := gw.pauseGuard(ctx); err != nil {
			return err
		}
	}
}
