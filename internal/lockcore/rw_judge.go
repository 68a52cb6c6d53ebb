package lockcore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// inspectGroup judges a shared group (S6): it blocks while any reader lives;
// dead readers are removed; an empty or all-dead group is dissolved and the
// lock handed on. It returns who blocks, or nil to try again at once.
func (rw *rwSupport) inspectGroup(ctx context.Context, ws *waitState) (*LockedError, error) {
	names, err := rw.readerNames()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var alive []stale.Owner
	blocked := false
	type victim struct {
		name string
		data []byte
	}
	var dead []victim
	reason, cause := "", dotlock.Cause(0)
	for _, n := range names {
		data, err := readIn(nil, rw.dir.Path(), n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ob := ws.readerOb(n)
		_, why, blk := rw.l.judge(ob, "", data, rw.l.cfg.Grace, rw.l.cfg.StaleAfter) // names used once
		if blk != nil {
			blocked = true
			alive = append(alive, blk.Owners...)
			if reason == "" {
				reason = "shared: " + blk.Reason
			}
			if cause == 0 {
				cause = blk.Cause
			}
			continue
		}
		dead = append(dead, victim{n, data})
		if reason == "" {
			reason = "dead reader: " + why
		}
	}
	if len(dead) > 0 || !blocked {
		err := rw.under(ctx, ws, func(s rwIn) error {
			for _, v := range dead {
				p := filepath.Join(rw.dir.Path(), v.name)
				if _, err := retireFile(s.o, p, func(m []byte) bool { return bytes.Equal(m, v.data) }); err != nil {
					return &BreakError{Reason: "dead reader " + v.name, Err: unwrapPath(err)}
				}
			}
			if !blocked {
				return s.dissolve()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if blocked {
		return &LockedError{Owners: alive, Cause: cause, Reason: reason}, nil
	}
	return nil, nil
}

// repairAnchor gives a group whose anchor is missing (its last reader
// crashed while dissolving it, between moving the anchor out and removing
// the directory) a new anchor, so that it can be joined and dissolved
// again. It reports whether it found reader records to repair for (done),
// and who blocks if the repair was not its to make.
func (rw *rwSupport) repairAnchor(ctx context.Context, ws *waitState) (*LockedError, bool, error) {
	names, err := rw.readerNames()
	if errors.Is(err, ErrNotLock) {
		return nil, false, err // not ours to repair
	}
	if err != nil || len(names) == 0 {
		return nil, false, nil
	}
	if _, err := os.Lstat(rw.dir.owner()); err == nil {
		return rw.anchorStands(ctx, ws)
	}
	if blk, err := rw.readersAreRecords(names, ws); blk != nil || err != nil {
		return blk, true, err
	}
	stood := false
	err = rw.under(ctx, ws, func(s rwIn) error {
		if data, err := s.dir.Read(); err != nil || len(data) != 0 {
			return nil // gone, or repaired meanwhile
		}
		owners, err := rw.l.Readers()
		if err != nil {
			return err
		}
		token, err := rw.l.lastToken(s.dir, &ws.last)
		if err != nil {
			return err
		}
		for _, o := range owners {
			token = max(token, o.Token)
		}
		anchor, err := stale.Self(token, stale.ModeShared, rw.l.cfg.Clock.Now())
		if err != nil {
			return err
		}
		err = rw.l.writeNewIn(s.o, rw.dir.Path(), OwnerFile, anchor.Marshal())
		stood = errors.Is(err, fs.ErrExist)
		return ignoreExist(err)
	})
	if stood && err == nil {
		return rw.anchorStands(ctx, ws)
	}
	return nil, true, err
}

// readersAreRecords checks that what is named like readers' records in P
// is records: a neighbour's directory holding only such a name on a
// symlink, a FIFO, a directory or text is no group, and no anchor is
// written into it (P10). It says ErrNotLock, once what was read has stood
// for the grace period where a client's cache can show foreign bytes for a
// moment (notRecordYet): till then, who blocks.
func (rw *rwSupport) readersAreRecords(names []string, ws *waitState) (*LockedError, error) {
	for _, n := range names {
		_, err := readIn(nil, rw.dir.Path(), n)
		if !errors.Is(err, ErrNotLock) {
			continue // a record, or gone, or not to be read now: judged by the repair
		}
		ob := ws.readerOb(n)
		if msg, wait := rw.l.notRecordYet(ob, err); wait {
			return &LockedError{Cause: dotlock.BeingWritten, Reason: "content no record has, for now: " + msg}, nil
		}
		return nil, err
	}
	return nil, nil
}

// anchorStands is repairAnchor's answer when an anchor stands, empty (a
// neighbour's, or one whose write was cut short): it is not replaced, and
// the readers are judged as a group's (S6), which blocks while any of them
// lives. (Tried again and again, the repair's guard section woke its own
// waiter at once, which tried again: it spun until its context ended.)
func (rw *rwSupport) anchorStands(ctx context.Context, ws *waitState) (*LockedError, bool, error) {
	blk, err := rw.inspectGroup(ctx, ws)
	return blk, true, err
}
