package lockcore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// TryLock takes the lock if it can be had now: if it is free, or its holder
// is proven dead. Otherwise it returns an error matching ErrLocked that names
// the holder. A holder on another host is judged by its lease, which one
// call cannot watch: a handle's tries watch it together (tryState), so that
// tries repeated for longer than the lease take a lock whose holder has
// stopped heartbeating, as Lock does. It waits for others at most tryWait (1 s)
// in all: for a breaker guard held by someone else (a break or handoff
// under way, or a guard left behind; then the error matches ErrLocked and
// names the guard), and for the cleanup of an attempt that failed (ENOSPC,
// say), which goes on in the background. Its own filesystem operations
// take what they take.
func (l *Lock) TryLock() error {
	select {
	case l.sem <- struct{}{}:
	default:
		return l.pathErr("lock", &LockedError{Owners: l.heldOwner(), Cause: dotlock.HeldByThisHandle, Reason: "held through this handle"})
	}
	// The only wait is for a breaker guard, which is held briefly.
	ctx, cancel := tryContext()
	defer cancel()
	ws := l.tryState()
	defer l.triedWith(ws)
	var blocked *LockedError
	for range 4 {
		h, blk, err := l.attempt(ctx, ws)
		if err != nil && l.transient(err) {
			blk, err = &LockedError{Cause: dotlock.Unreachable, Reason: err.Error()}, nil
		}
		if err != nil {
			<-l.sem
			return l.pathErr("lock", l.tryErr(ctx, err))
		}
		if h != nil {
			l.install(h)
			return nil
		}
		if blk != nil {
			blocked = blk
			break
		}
	}
	<-l.sem
	if blocked == nil {
		blocked = &LockedError{Cause: dotlock.Contended, Reason: "contended"}
	}
	return l.pathErr("lock", blocked)
}

// tryState is the wait state of a try, carrying what the handle's earlier
// tries watched (the holder's record, a group's readers', the guard's): a
// record unchanged since is as old as they saw it (judge). Without it a
// try would see every record for the first time, and tries alone (a
// semaphore's, a caller's loop) would never take a lock from a holder on
// another host that died, nor break a guard left by a breaker that died
// there (TestRemoteHolderLapses).
func (l *Lock) tryState() *waitState {
	ws := l.newWaitState()
	ws.try = true
	l.mu.Lock()
	ws.sightings = l.tried.clone()
	l.mu.Unlock()
	return ws
}

// triedWith keeps what the try ws watched for the next one.
func (l *Lock) triedWith(ws *waitState) {
	l.mu.Lock()
	l.tried = ws.sightings
	l.mu.Unlock()
}

// Lock waits until it holds the lock or ctx is done, and then returns
// ctx.Err() unchanged.
func (l *Lock) Lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	ws := l.newWaitState()
	defer ws.stop()
	ws.netOK = l.netWaits()
	l.kind.yield(ctx)
	var last string
	for {
		woken := l.wake.channel()
		if ws.giveWayToLong(ctx) { // W7: held, as last seen
			if err := ws.pause(ctx, woken, false); err != nil {
				<-l.sem
				return err
			}
			continue
		}
		woken = l.wake.channel()
		h, blk, err := l.attempt(ctx, ws)
		if err != nil && l.lookAgain(ws, err) {
			// P6: the client cannot reach its server for now, or answers
			// oddly; look again after a poll's pause (not in line: that
			// needs the server too).
			if l.cfg.OnWait != nil && l.transient(err) {
				l.cfg.OnWait(&LockedError{Cause: dotlock.Unreachable, Reason: err.Error()})
			}
			if err := ws.pause(ctx, woken, false); err != nil {
				<-l.sem
				return err
			}
			continue
		}
		if err != nil {
			<-l.sem
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return ctx.Err()
			}
			return l.pathErr("lock", err)
		}
		if h != nil {
			l.install(h)
			return nil
		}
		if blk != nil {
			ws.markLong()
		}
		if blk != nil && !ws.takeProbed() {
			// A lock file announces itself and waits here (W4); a lock
			// directory waits in line and in the queue (S2).
			h, retry, err := l.kind.blocked(ctx, ws, blk, &last)
			if err != nil && ctx.Err() == nil && l.lookAgain(ws, err) {
				retry, err = false, nil // P6, as above: pause, look again
			}
			if err != nil {
				<-l.sem
				return l.ctxOr(ctx, "lock", err)
			}
			if h != nil {
				l.install(h)
				return nil
			}
			if retry {
				continue
			}
		}
		if err := ws.pause(ctx, woken, blk == nil); err != nil {
			<-l.sem
			return err
		}
	}
}

// attempt makes one try at the lock. It returns the hold if acquired, or
// who is in the way, or neither when the next try should follow at once
// (the path became free, or a stale lock was just removed).
func (l *Lock) attempt(ctx context.Context, ws *waitState) (*hold, *LockedError, error) {
	o := openOpDir(l.store.Path())
	defer o.close()
	if blk, err := l.kind.waitersAhead(ctx, ws, o); blk != nil || err != nil {
		return nil, blk, err
	}
	// A1: create the entry.
	st := l.store.at(o)
	e, held, err := l.createExcl(st.Create, st.Path())
	if err == nil && !held && l.cfg.AfterCreate != nil { // model: A1lost
		if herr := l.cfg.AfterCreate(); herr != nil {
			e.Close() // the reply was "lost": we no longer know we created it
			e, err = nil, &fs.PathError{Op: "create", Path: l.store.Path(), Err: herr}
			held = l.maybeHeld(err)
		}
	}
	if err != nil && !held {
		return nil, nil, err
	}
	if held {
		o.close() // what follows is by name (the slow path): one descriptor more
		// A2: someone (perhaps we, through a lost reply) has the path.
		if ws.probeOK() {
			ws.net.probed = true // W6: as last seen
			return nil, ws.net.seen, nil
		}
		h, blk, err := l.inspectFor(ctx, ws, l.kind.takesOver())
		ws.looked(blk)
		return h, blk, err
	}
	return l.complete(ctx, ws, e, st)
}

// createExcl runs an exclusive create and sorts its failures (P6): held
// (EEXIST, or an odd error while the path exists), or a real error. A
// network filesystem may report a lost race with EPERM after the winner has
// already removed the entry again (sshfs did so in a quarter of such
// races): then the create is tried again, a few times.
func (l *Lock) createExcl(create func(fs.FileMode) (Entry, error), path string) (Entry, bool, error) {
	for try := 0; ; try++ {
		e, err := create(fs.FileMode(l.cfg.Perm))
		switch {
		case err == nil:
			return e, false, nil
		case errors.Is(err, fs.ErrExist):
			return nil, true, err
		case !contendedErrno(err) || try == 3:
			return nil, false, err
		}
		if _, lerr := os.Lstat(path); lerr == nil {
			return nil, true, err
		}
	}
}

// transient reports whether err, from an attempt on a network filesystem,
// is one its client gives while it cannot reach the server (P6): the
// attempt is made again, as if the lock were held.
func (l *Lock) transient(err error) bool {
	return transientErrno(err) && knownNetworkFS(filepath.Dir(l.store.Path()))
}

// notLockSettle is how long a waiter on a network filesystem goes on
// finding P not a lock's before it says so: twice the SMB client's
// attribute cache (actimeo, 1 s).
const notLockSettle = 2 * time.Second

// lookAgain reports whether a waiter (Lock, RLock) should pause and look
// again rather than fail with err: the client cannot reach its server
// (transient), or P looks like no lock's on a network filesystem, for
// less than notLockSettle so far. Measured: while smbd restarted, the
// Linux client built a regular file at a lock directory's path from a
// reply without attributes (its log: "bogus file nlink value 0"), and
// kept it for its attribute cache's time; the lock directory was
// healthy. A real stranger at P is still reported, notLockSettle later.
func (l *Lock) lookAgain(ws *waitState, err error) bool {
	if l.transient(err) {
		return true
	}
	if !errors.Is(err, ErrNotLock) || !knownNetworkFS(filepath.Dir(l.store.Path())) {
		return false
	}
	now := time.Now()
	if ws.notLock.IsZero() {
		ws.notLock = now
	}
	return now.Sub(ws.notLock) < notLockSettle
}

// maybeHeld reports whether a failed create may mean that the path is
// taken: EEXIST, or an error a network filesystem gives instead (P6).
func (l *Lock) maybeHeld(err error) bool {
	if errors.Is(err, fs.ErrExist) {
		return true
	}
	if !contendedErrno(err) {
		return false
	}
	_, lerr := os.Lstat(l.store.Path())
	return lerr == nil
}

// complete turns a created entry into a hold (A3..A6); st is the store
// as the attempt reaches it (at).
func (l *Lock) complete(ctx context.Context, ws *waitState, e Entry, st Store) (*hold, *LockedError, error) {
	now := l.cfg.Clock.Now()
	// A3: the token follows the last hold that left the path, which the
	// path's departures (release or break) publish atomically as they free it.
	last, err := l.lastToken(st, &ws.last)
	if err != nil {
		// Never a smaller token: give the entry up and come back.
		e.Close()
		l.giveUp(ctx, ws, st, nil)
		if errors.Is(err, ErrNotLock) {
			return nil, nil, err
		}
		return nil, &LockedError{Cause: dotlock.LastUnreadable, Reason: err.Error()}, nil
	}
	token, err := nextToken(last, 1)
	if err != nil {
		e.Close()
		l.giveUp(ctx, ws, st, nil)
		return nil, nil, err
	}
	owner, rec, err := l.writeHold(e, token, now)
	if err != nil {
		e.Close()
		l.giveUp(ctx, ws, st, rec)
		return nil, nil, err
	}
	return l.verify(ctx, ws, e, st, owner, rec, now)
}

// verify is A5 and A6 for the entry e, written with rec: it returns the
// hold if the entry at the path is ours once no breaker is at work.
func (l *Lock) verify(ctx context.Context, ws *waitState, e Entry, st Store, owner stale.Owner, rec []byte, now time.Time) (*hold, *LockedError, error) {
	// A5: a breaker that saw our entry before the record was written may be
	// at work; decide nothing until no guard is held.
	if err := l.waitGuardClear(ctx, ws, st.opDir()); err != nil {
		e.Close()
		l.giveUp(ctx, ws, st, rec)
		return nil, nil, err
	}
	// A6: verify that the entry at the path is ours: on a local filesystem
	// by its inode (which cannot be reused while we hold it open), else by
	// its bytes.
	if id, ok := localEntryID(e, l.local); ok {
		if at, known := idAt(id, l.kind.ownerPath()); known {
			if at {
				h := l.newHold(owner, e, now)
				h.id, h.idKnown = id, true
				return h, nil, nil
			}
			e.Close()
			return nil, nil, nil // displaced while undecided; try again
		}
	}
	data, err := st.Read()
	if err == nil && bytes.Equal(data, rec) {
		return l.newHold(owner, e, now), nil, nil
	}
	e.Close()
	if replaced := undecidedGone(err); replaced || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
		// Undecided, and we will not hold it: our record, if it is there,
		// names a live process, which no one on this host would break.
		// (An SMB client's EINVAL says only that it holds an older file
		// once at this name: ours may be there. Try again.)
		l.giveUp(ctx, ws, st, rec)
		if replaced {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	return nil, nil, nil // displaced while undecided; try again
}

// giveUp is abandon, whose calls go by name: the directory the attempt's
// calls went through (st's) is closed first, so that a process short of
// descriptors has that one back.
func (l *Lock) giveUp(ctx context.Context, ws *waitState, st Store, rec []byte) {
	st.opDir().close()
	l.abandon(ctx, ws, rec)
}

// abandon removes an entry this attempt created but will not hold: empty
// (rec == nil) or carrying rec. Anything else at the path is left alone.
//
// It holds the breaker guard while it works: Retire puts back a record it
// moved and found not ours, and only the guard keeps an entry created at
// the path meanwhile undecided (A5) — without it, the put-back could
// replace a lock its creator had already verified and now holds. The
// caller waits for it until ctx is done (see cleanup).
func (l *Lock) abandon(ctx context.Context, ws *waitState, rec []byte) {
	var uuid string
	if o, err := stale.Parse(rec); err == nil {
		uuid = o.UUID
	}
	ctx, cancel := ws.cleanupCtx(ctx)
	defer cancel()
	gws := l.newWaitState()
	gws.guardObs = ws.guardObs // the guard the attempt waited for is as old as it saw it
	retire := func(time.Time) error {
		ok, err := l.store.Retire(false, func(moved []byte) bool {
			return len(moved) == 0 || mine(moved, rec, uuid)
		})
		return doneUnlessLeft(ok, err)
	}
	l.cleanup(ctx, func(bg context.Context) error {
		err := l.underGuard(bg, gws, retire)
		if errors.Is(err, ErrNotLock) {
			// The guard's path holds what dotlock did not make (P10): no
			// one can take the guard, so no one can pass A5 and verify an
			// entry at the path; ours goes without it, rather than stay
			// naming this live process.
			return retire(time.Time{})
		}
		return err
	})
}
