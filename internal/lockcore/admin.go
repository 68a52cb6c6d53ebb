package lockcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// Administration: what a command-line tool needs beyond taking and releasing
// its own locks — handing a hold to another process on this host (HandOver),
// keeping such a hold's heartbeat going from a helper process (Adopt),
// releasing it from a third process (ReleaseFor), breaking a lock on request
// (Break) and a report of who holds it (Status). Nothing here is a second
// protocol: records are judged by the handle's Checker (judge), removed only
// by the guarded, byte-for-byte re-verified retire of B1..B5 (breakStale,
// inspectGroup), and released by the checked release of R1..R3 (release).

// Holder is one holder of a lock, with the checker's verdict on it.
type Holder struct {
	Owner     stale.Owner
	Judgement stale.Judgement
}

// Status is what is at a lock path now. It is read without changing
// anything on disk.
type Status struct {
	Path      string       // the absolute lock path
	Held      bool         // an entry exists at the path
	Mode      string       // stale.ModeExclusive or stale.ModeShared, when the record is readable
	Holders   []Holder     // the writer, or the readers of a shared group
	Anchor    *stale.Owner // a shared group's anchor record (it names no holder)
	RecordErr error        // the record at the path cannot be parsed (a *stale.RecordError)
	LastToken uint64       // the token of the last hold that left the path (0: none)
	Waiting   int          // waiters queued (lock directories)
	Breaking  bool         // a breaker guard exists: a stale lock is being removed
	GuardBy   string       // the breaker guard's owner ("user NAME (uid N)"), when Breaking
}

// Status reports who holds the lock now, with the checker's verdict on each
// holder. A free lock is not an error: Held is false.
func (l *Lock) Status() (Status, error) {
	st := Status{Path: l.store.Path()}
	if last, err := l.store.ReadLast(); err == nil {
		if o, err := stale.Parse(last); err == nil {
			st.LastToken = o.Token
		}
	}
	if _, err := os.Lstat(l.guard.Path()); err == nil {
		st.Breaking, st.GuardBy = true, ownerDesc(l.guard.Path())
	}
	st.Waiting = l.kind.waiting()
	data, err := l.store.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, l.pathErr("status", err)
	}
	st.Held = true
	o, perr := stale.Parse(data)
	if perr != nil {
		st.RecordErr = perr
		return st, nil
	}
	st.Mode = o.Mode
	if l.kind.group(o) {
		anchor := o
		st.Anchor = &anchor
		readers, err := l.Readers()
		if err != nil {
			return st, err
		}
		for _, r := range readers {
			st.Holders = append(st.Holders, Holder{Owner: r, Judgement: l.cfg.Checker.Judge(r)})
		}
		return st, nil
	}
	st.Holders = []Holder{{Owner: o, Judgement: l.judgeHolder(o, data)}}
	return st, nil
}

// recordPath is where the record of a hold with this UUID lives: the
// lock's record, or a reader's inside a lock directory (errNoShared for a
// lock file, which has no shared holds).
func (l *Lock) recordPath(uuid string, shared bool) (string, error) {
	if shared {
		return l.kind.readerPath(uuid)
	}
	return l.kind.ownerPath(), nil
}

// HandOver gives the handle's hold — the exclusive one, or else its newest
// shared one — to the process pid on this host. Under the breaker guard, and
// after checking that the record at the path is still this hold's (as R1
// does), the record is replaced in one rename by one that names pid and its
// start time, keeping the hold's UUID and token. The handle then holds
// nothing and stops heartbeating.
//
// The hold is then pid's as far as every judge is concerned: on this host it
// is reclaimed as soon as pid exits (no heartbeat needed); hosts and PID
// namespaces that cannot probe pid judge it by its heartbeat, which Adopt
// can keep going from a helper process. ReleaseFor releases it.
//
// If the hand-over fails while the hold is still this handle's, the hold is
// released, not left without a heartbeat.
func (l *Lock) HandOver(pid int) (stale.Owner, error) {
	p, err := stale.SystemProcesses{}.Lookup(pid)
	if err != nil {
		return stale.Owner{}, l.pathErr("handover", fmt.Errorf("pid %d: %w", pid, err))
	}
	if !p.Exists || p.Zombie {
		return stale.Owner{}, l.pathErr("handover", fmt.Errorf("no process with pid %d", pid))
	}
	if err := CanSignal(pid); err != nil {
		return stale.Owner{}, l.pathErr("handover", err)
	}
	l.mu.Lock()
	h, exclusive := l.hold, l.hold != nil
	if exclusive {
		l.hold = nil
	} else if n := len(l.readers); n > 0 {
		h = l.readers[n-1]
		l.readers = l.readers[:n-1]
	}
	l.mu.Unlock()
	if h == nil {
		return stale.Owner{}, l.pathErr("handover", ErrNotHeld)
	}
	l.stopHeartbeat(h)
	defer func() {
		if exclusive {
			<-l.sem
		}
		l.wake.notify()
	}()
	select {
	case <-h.lost:
		h.entry.Close()
		return stale.Owner{}, l.pathErr("handover", h.lostErr)
	default:
	}
	o := h.owner
	o.PID, o.StartID, o.Started = pid, p.StartID, p.Started
	o.Beat, o.BeatTime = h.beat+1, l.cfg.Clock.Now()
	rec := o.Marshal()
	path, _ := l.recordPath(h.owner.UUID, h.shared) // a shared hold is a lock directory's
	h.entry.Close()                                 // Windows cannot rename over an open file
	do := func(time.Time) error { return l.replaceRecord(h, path, rec) }
	if err := l.underGuard(context.Background(), l.newWaitState(), do); err != nil {
		if !errors.Is(err, ErrLost) {
			// Still ours, named as before: release it rather than leave a
			// hold that nobody heartbeats.
			h.lastBeat = time.Time{}
			l.release(h)
		}
		return stale.Owner{}, l.pathErr("handover", err)
	}
	return o, nil
}

// Adopt makes this handle the keeper of a hold that HandOver gave away (in
// any process): it finds the record carrying uuid — the lock's record, or
// with shared a reader's record in a lock directory — and from now on
// heartbeats it as if this handle had acquired it (H1..H3). Unlock (RUnlock
// for a shared hold) releases it; Lost is closed when it is found lost —
// released by ReleaseFor, or broken. The record keeps naming the process it
// was handed to: Adopt changes who heartbeats, not who holds.
func (l *Lock) Adopt(uuid string, shared bool) (stale.Owner, error) {
	path, err := l.recordPath(uuid, shared)
	if err != nil {
		return stale.Owner{}, l.pathErr("adopt", err)
	}
	if !shared {
		select {
		case l.sem <- struct{}{}:
		default:
			return stale.Owner{}, l.pathErr("adopt", &LockedError{Owners: l.heldOwner(), Cause: dotlock.HeldByThisHandle, Reason: "held through this handle"})
		}
	}
	h, err := l.adopt(path, uuid, shared, time.Time{}) // handed over when, by whose clock?
	if err == nil && h != nil {
		h.beat = h.owner.Beat // carry the counter on
		// Up to the guard's lease and a grace period: a guard left by a
		// breaker that died on another host is broken only after that.
		ctx, cancel := context.WithTimeout(context.Background(), l.guardLease()+l.cfg.Grace)
		h = l.proveAdopted(ctx, l.newWaitState(), h)
		cancel()
	}
	if err != nil || h == nil {
		if !shared {
			<-l.sem
		}
		if err == nil {
			err = &LostError{Reason: "no hold with uuid " + uuid + " at the path"}
		}
		return stale.Owner{}, l.pathErr("adopt", err)
	}
	if shared {
		l.installShared(h)
	} else {
		l.install(h)
	}
	return h.owner, nil
}

// Drop forgets the handle's holds without touching the lock, once a
// heartbeat under way has finished. It is for a process about to exit whose
// hold was released for it (ReleaseFor): exit cuts a beat short, and a beat
// that finds its record gone decides under the breaker guard (H1g), so an
// exit then leaves an empty guard that others wait out for the grace
// period.
func (l *Lock) Drop() {
	l.mu.Lock()
	hs := l.holds()
	if l.hold != nil {
		defer func() { <-l.sem }()
	}
	l.hold, l.readers = nil, nil
	l.mu.Unlock()
	for _, h := range hs {
		l.stopHeartbeat(h)
		h.entry.Close()
	}
}

// ReleaseFor releases, from any process, the hold whose record is o (found by
// its UUID: the lock's record, or a reader's in a shared group). It is the
// checked release (R1..R3), always under the breaker guard: if the record at
// the path is no longer o's hold it returns an error matching ErrLost and
// touches nothing.
func (l *Lock) ReleaseFor(o stale.Owner) error {
	shared := o.Mode == stale.ModeShared
	path, err := l.recordPath(o.UUID, shared)
	if err != nil {
		return l.pathErr("release", err)
	}
	h, err := l.adopt(path, o.UUID, shared, time.Time{})
	if err != nil {
		return l.pathErr("release", err)
	}
	if h == nil {
		return l.pathErr("release", &LostError{Reason: "not held by the hold of " + o.String()})
	}
	h.lastBeat = time.Time{} // another process's hold: it may have lapsed (R3)
	if err := l.release(h); err != nil {
		return l.pathErr("release", err)
	}
	if !shared {
		l.kind.handOn(nil) // hand on to waiters (R3 does not)
	}
	l.wake.notify()
	return nil
}

// Broken says what Break removed.
type Broken struct {
	// Owners are the holders whose records were removed; empty when the
	// record could not be read, or when the path was free.
	Owners []stale.Owner
	// Unreadable: an unreadable record (empty, partial, corrupt) was removed.
	Unreadable bool
	// Reason says why: the checker's verdict, or "forced: ...".
	Reason string
}

// Break removes the lock at the path if its holder is dead, by the
// protocol's own breaking steps (B1..B5: the guard, the byte-for-byte
// re-verification under it, the checked rename that keeps a valid record's
// token in the last-record slot). A holder on this host is judged at once.
// A holder that cannot be probed (another host or PID namespace) is watched:
// it is removed once its heartbeat has been still for the lease
// (StaleAfter), as a waiting Lock would; an unreadable record likewise
// after the grace period. If the record changes meanwhile, or its holder
// is alive, Break returns an error matching ErrLocked naming it. For a
// shared group, dead readers are removed (and an all-dead group
// dissolved) in one look; readers alive or on other hosts make it fail
// likewise.
//
// With force, the holder is removed whatever the verdict — a live holder
// learns so at its next heartbeat (ErrLost) — still through B1..B5.
//
// Break returns when done, or with ctx.Err() when ctx ends while it watches.
// A free path is not an error: Broken is empty.
func (l *Lock) Break(ctx context.Context, force bool) (Broken, error) {
	ws := l.newWaitState()
	var res Broken
	var watched []byte // the record being watched for the lease or grace
	for {
		data, err := l.store.Read()
		if errors.Is(err, fs.ErrNotExist) {
			return res, nil
		}
		if err != nil {
			return res, l.pathErr("break", err)
		}
		o, perr := stale.Parse(data)
		if perr == nil && l.kind.group(o) {
			return l.breakGroup(ctx, ws, force)
		}
		victim, reason, blk := l.judge(&ws.holder, l.store.Path(), data, l.cfg.Grace, l.cfg.StaleAfter)
		if blk != nil {
			switch {
			case force:
				reason = "forced: " + blk.Reason
				if perr == nil {
					victim = &o
				}
			case perr != nil && o.Version > stale.FormatVersion, perr == nil && l.cfg.Checker.Judge(o).Verdict == stale.Alive:
				return res, l.pathErr("break", blk)
			default:
				// Remote, or unreadable: watch it, as a waiting Lock would.
				if watched != nil && !bytes.Equal(watched, data) {
					return res, l.pathErr("break", &LockedError{Owners: blk.Owners, Cause: blk.Cause, Reason: blk.Reason + "; the record changed while watched"})
				}
				watched = data
				if err := ws.pause(ctx, nil, false); err != nil {
					return res, err
				}
				continue
			}
		}
		if _, err := l.breakStale(ctx, ws, data, victim, reason, false); err != nil {
			return res, l.pathErr("break", err)
		}
		cur, err := l.store.Read()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, l.pathErr("break", err)
		}
		if err == nil && bytes.Equal(cur, data) {
			// The guard was busy: come round again.
			if err := ws.pauseGuard(ctx); err != nil {
				return res, err
			}
			continue
		}
		if err == nil && perr == nil {
			if c, cerr := stale.Parse(cur); cerr == nil && c.UUID == o.UUID {
				// Same hold, newer heartbeat (B3 saw other bytes): again.
				watched = nil
				continue
			}
		}
		// The judged record is gone from the path (removed by us, or by
		// another breaker: either way, as asked).
		if victim != nil {
			res.Owners = append(res.Owners, *victim)
		} else {
			res.Unreadable = true
		}
		res.Reason = reason
		return res, nil
	}
}

// replaceRecord puts rec in place of h's record at path, if that is still
// h's (HandOver, under the guard).
func (l *Lock) replaceRecord(h *hold, path string, rec []byte) error {
	data, err := h.read()
	if errors.Is(err, fs.ErrNotExist) {
		return &LostError{Reason: "the lock was removed"}
	}
	if err != nil {
		return err
	}
	if cur, perr := stale.Parse(data); perr != nil || cur.UUID != h.owner.UUID {
		return lostTo(cur, perr)
	}
	tmp := tempName(l.store.Path())
	if err := writeNew(tmp, rec, l); err != nil {
		os.Remove(tmp)
		return err
	}
	if path == l.store.Path() {
		// The lock file itself: a rename replaces whatever stands at the
		// path, never following a symlink there.
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
		return nil
	}
	// A record inside P: renamed into the directory at P through a
	// descriptor of it, never through a symlink put at P since h.read
	// looked (P10).
	d, err := openLockDir(filepath.Dir(path))
	if err == nil {
		err = d.moveIn(tmp, filepath.Base(path))
		d.close()
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
