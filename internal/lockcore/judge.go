package lockcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// inspect reads the record at the path and decides: held by the living
// (who is returned), being written (within grace), or stale — then broken.
func (l *Lock) inspect(ctx context.Context, ws *waitState) (*LockedError, error) {
	_, blk, err := l.inspectFor(ctx, ws, false)
	return blk, err
}

// inspectFor is inspect by an attempt that takes the path over if it
// breaks a stale record (take: B6), returning the hold it then has.
func (l *Lock) inspectFor(ctx context.Context, ws *waitState, take bool) (*hold, *LockedError, error) {
	data, err := l.store.Read()
	return l.inspectReadFor(ctx, ws, data, err, take)
}

// inspectRead is inspect of what the store's Read just returned.
func (l *Lock) inspectRead(ctx context.Context, ws *waitState, data []byte, err error) (*LockedError, error) {
	_, blk, err := l.inspectReadFor(ctx, ws, data, err, false)
	return blk, err
}

func (l *Lock) inspectReadFor(ctx context.Context, ws *waitState, data []byte, err error, take bool) (*hold, *LockedError, error) {
	if errors.Is(err, fs.ErrNotExist) {
		// Whatever stands here next is a new record: an empty one must
		// not inherit the age of an empty one seen before.
		ws.holder.Reset()
		return nil, nil, nil
	}
	if err != nil {
		if msg, wait := l.notRecordYet(&ws.holder, err); wait {
			return nil, &LockedError{Cause: dotlock.BeingWritten, Reason: "content no record has, for now: " + msg}, nil
		}
		return nil, nil, err
	}
	if o, err := stale.Parse(data); err == nil && l.kind.group(o) {
		blk, err := l.rw.inspectGroup(ctx, ws)
		return nil, blk, err
	}
	victim, reason, blk := l.judge(&ws.holder, l.store.Path(), data, l.cfg.Grace, l.cfg.StaleAfter)
	if blk != nil {
		return nil, blk, nil
	}
	// A lock directory without a record for the grace period: a group
	// whose last reader crashed while dissolving it is repaired, not
	// broken. Looked for only now: an empty directory is mostly one being
	// made or released, and listing it on every look would, on Windows,
	// keep its holder from removing it (a sharing violation).
	if len(data) == 0 {
		if blk, done, err := l.kind.repairEmpty(ctx, ws); done || err != nil {
			return nil, blk, err
		}
	}
	h, err := l.breakStale(ctx, ws, data, victim, reason, take)
	return h, nil, err
}

// judge decides about a record seen at a path. It returns who blocks, or
// (blk == nil) why the record is stale, with its parsed owner if it has one.
// at is the entry the record was read from, when its name is used again by
// others (the lock path, the guard): see unnamedKey.
func (l *Lock) judge(ob *stale.Observation, at string, data []byte, grace, lease time.Duration) (*stale.Owner, string, *LockedError) {
	now := l.cfg.Clock.Now()
	o, perr := stale.Parse(data)
	if perr != nil {
		var re *stale.RecordError
		if errors.As(perr, &re) && o.Version > stale.FormatVersion {
			// A newer dotlock's record we cannot judge: never break it.
			return nil, "", &LockedError{Cause: dotlock.NewerFormat, Reason: perr.Error() + "; held by a newer dotlock? not judged"}
		}
		// P5: empty, partial or corrupt: being written, until it has stayed
		// the same for the grace period by our own clock.
		if age := ob.See(unnamedKey(data, at), now); age < grace {
			return nil, "", &LockedError{Cause: dotlock.BeingWritten, Reason: "record being written (" + perr.Error() + ")"}
		} else {
			return nil, fmt.Sprintf("%v, unchanged for %v", perr, age.Round(time.Millisecond)), nil
		}
	}
	j := l.judgeHolder(o, data)
	switch j.Verdict {
	case stale.Dead:
		return &o, j.Reason, nil
	case stale.Remote:
		// P9: a lease, judged by whether the heartbeat changed while we
		// watched, never by comparing its timestamp with our clock.
		if age := ob.See(string(data), now); age >= lease {
			return &o, fmt.Sprintf("%s; heartbeat unchanged for %v (lease %v)", j.Reason, age.Round(time.Millisecond), lease), nil
		}
		return nil, "", &LockedError{Owners: []stale.Owner{o}, Cause: dotlock.HeldWithinLease, Reason: j.Reason + ", heartbeat within lease"}
	}
	ob.Reset()
	return nil, "", &LockedError{Owners: []stale.Owner{o}, Cause: dotlock.HeldAlive, Reason: j.Reason}
}

// unnamedKey is what an observation of content that names no writer (P5:
// empty, partial) is kept by: its bytes, and which file holds them. Bytes
// alone cannot tell one empty record from the next: an empty guard watched
// for a while, then gone unseen between two looks (broken by another
// process, or while this one was not looking: between its tries, or behind
// a host line), and another guard just created at the name, empty while
// its maker writes it, looked like one guard empty all along — broken at
// first sight, its maker lost it or, having verified it, shared the guard
// with whoever took the name while it was aside. A record's own bytes name
// their writer (a UUID), so need no more. The file's stamp (entryStamp) is
// looked at after the read: a file that replaced the one read is then the
// one watched from this look on, which only makes the wait longer.
func unnamedKey(data []byte, at string) string {
	if at == "" {
		return string(data)
	}
	stamp, _ := entryStamp(at) // none: by the bytes alone, rather than never the same
	return string(data) + "\x00" + stamp
}

// breakStale removes the stale record victimData from the lock path
// (B1..B5); with take, it takes the path it freed (B6) and returns the
// hold.
func (l *Lock) breakStale(ctx context.Context, ws *waitState, victimData []byte, victim *stale.Owner, reason string, take bool) (*hold, error) {
	var t *takeover
	released, err := l.withGuardReleased(ctx, ws, func(deadline time.Time, o *opDir) error {
		st := l.store.at(o)
		// B3: re-verify under the guard that the path still holds exactly
		// what was judged stale.
		cur, err := st.Read()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, victimData) || l.cfg.Clock.Now().After(deadline) {
			return nil
		}
		// B4: move the record aside atomically and check what was moved;
		// a valid record goes to the last-record slot, keeping its token.
		ok, err := st.Retire(victim != nil, func(moved []byte) bool {
			return bytes.Equal(moved, victimData)
		})
		if err != nil {
			return &BreakError{Owner: victim, Reason: reason, Err: unwrapPath(err)}
		}
		if ok && l.cfg.OnBreak != nil {
			l.cfg.OnBreak(victim, reason)
		}
		if !ok {
			return nil
		}
		if err := l.kind.freed(o); err != nil { // a lock directory hands it to the queue
			return err
		}
		if take {
			t = l.takeFreed(st, victim, deadline)
		}
		return nil
	})
	if t != nil {
		return l.tookOver(ctx, ws, t, released)
	}
	var be *BreakError
	switch {
	case err == nil, errors.Is(err, errGuardBusy):
		return nil, nil
	case errors.As(err, &be):
		return nil, err
	}
	// No guard for us (no permission to create it, say): say whose lock
	// could not be broken, and why it had to be.
	return nil, &BreakError{Owner: victim, Reason: reason, Err: err}
}

// notRecordYet reports whether err, a read that found content no record
// has (P10), is to be waited on rather than reported: on a network
// filesystem a client's cache can briefly show what no holder wrote
// (sshfs with its caches once read 512 bytes of something else where a
// record was being replaced), so the same content must stand for the
// grace period (ob, by our clock) before it is called not a lock. On a
// local filesystem a read is exact: not a lock, at once. Either way it is
// never removed. Used for the lock entry, the guard and the last record.
func (l *Lock) notRecordYet(ob *stale.Observation, err error) (string, bool) {
	var nr ErrNotRecord
	if l.exact || !errors.As(err, &nr) || nr.Content == nil {
		return "", false
	}
	var at string
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		at = pe.Path
	}
	return nr.Msg, ob.See(unnamedKey(nr.Content, at), l.cfg.Clock.Now()) < l.cfg.Grace
}
