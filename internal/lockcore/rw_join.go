package lockcore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// makeShared points h at its reader record instead of P's owner record.
func (rw *rwSupport) makeShared(h *hold, path string) {
	h.shared, h.record = true, path
	h.read = func() ([]byte, error) { return readIn(nil, filepath.Dir(path), filepath.Base(path)) }
}

// join adds a reader to a group, forming it if P is free (S1). Under the
// guard. It returns who blocks when the reader must wait.
func (rw rwIn) join(ws *waitState) (*hold, *LockedError, error) {
	l := rw.l
	queue, err := rw.waiters()
	if err != nil {
		return nil, nil, err
	}
	for _, w := range queue {
		if w.writer {
			return nil, &LockedError{Owners: []stale.Owner{w.owner}, Cause: dotlock.WaitersQueued, Reason: "a writer is waiting (readers queue behind it)"}, nil
		}
	}
	now := l.cfg.Clock.Now()
	data, err := rw.dir.Read()
	if errors.Is(err, fs.ErrNotExist) && len(queue) > 0 {
		// Only readers queue (writers were ruled out above): let them in
		// as a group, then join it. If none was let in (P.last
		// unreadable, or they died), P is still free: form the group
		// below, which says why if it cannot (joining again would come
		// straight back here, for as long as P.last stays so).
		if err := rw.schedule(); err != nil {
			return nil, nil, err
		}
		if _, lerr := rw.o.lstat(rw.dir.Path()); !errors.Is(lerr, fs.ErrNotExist) {
			return rw.join(ws)
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		last, err := rw.l.lastToken(rw.dir, &ws.last)
		if errors.Is(err, ErrNotLock) {
			return nil, nil, err // a neighbour's file (a symlink, say) at P.last: as A3
		}
		if err != nil {
			return nil, &LockedError{Cause: dotlock.LastUnreadable, Reason: err.Error()}, nil
		}
		token, err := nextToken(last, 1)
		if err != nil {
			return nil, nil, err
		}
		anchor, err := stale.Self(token, stale.ModeShared, now)
		if err != nil {
			return nil, nil, err
		}
		if err := rw.createP(anchor.Marshal()); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, nil, nil // a writer took P first: try again
			}
			return nil, nil, err
		}
		return rw.addReader(token, now)
	case err != nil:
		return nil, nil, err
	}
	return rw.joinGroup(data, now)
}

// joinGroup adds a reader to the group whose anchor record is data (S1),
// or fails with errNotShared if data is not an anchor. Under the guard.
func (rw rwIn) joinGroup(data []byte, now time.Time) (*hold, *LockedError, error) {
	o, perr := stale.Parse(data)
	if perr != nil || o.Mode != stale.ModeShared {
		// Exclusive, a record being written, or readers without an
		// anchor: judged (or repaired) by inspect, outside the guard.
		return nil, nil, errNotShared
	}
	// S1: the anchor's token advances in place; the reader takes it.
	if err := rw.advanceAnchor(&o, data); err != nil {
		return nil, nil, err
	}
	return rw.addReader(o.Token, now)
}

var errNotShared = errors.New("not held in shared mode")

// advanceAnchor advances the anchor o (read as data) to the next token, in
// place, through a descriptor that it checks still holds data: written by
// name, a neighbour's hard link or FIFO put in its place would take the
// write (or block it). Under the guard.
func (rw rwIn) advanceAnchor(o *stale.Owner, data []byte) error {
	d, err := rw.o.openLockDir(rw.dir.Path())
	if err != nil {
		return err
	}
	defer d.close()
	e, cur, err := d.openRecord(OwnerFile)
	if err != nil {
		return err
	}
	defer e.Close()
	if !bytes.Equal(cur, data) {
		return errAnchorMoved
	}
	if o.Token, err = nextToken(o.Token, 1); err != nil {
		return err
	}
	return rw.l.writeAt(e, o.TokenLine(), o.TokenOffset())
}

var errAnchorMoved = errors.New("the group's anchor changed under the guard")

func (rw rwIn) addReader(token uint64, now time.Time) (*hold, *LockedError, error) {
	o, err := stale.Self(token, stale.ModeShared, now)
	if err != nil {
		return nil, nil, err
	}
	d, err := rw.o.openLockDir(rw.dir.Path())
	if err != nil {
		return nil, nil, err
	}
	defer d.close()
	name := readerPrefix + o.UUID
	e, err := d.create(name, fs.FileMode(rw.l.cfg.Perm))
	if err != nil {
		return nil, nil, err
	}
	if err := rw.l.writeEntry(e, o.Marshal()); err != nil {
		// No hold without its record: a reader whose record is missing or
		// torn would be judged by others as not there, or dead.
		e.Close()
		d.remove(name)
		return nil, nil, err
	}
	h := rw.l.newHold(o, e, now)
	rw.makeShared(h, rw.readerPath(o.UUID))
	return h, nil, nil
}

// joinFromQueue lets the queued reader q join the group holding P if no
// writer queues. It returns the hold, or nil (still queued, or out of the
// queue without a hold: the caller queues again).
func (q *queuedWait) joinFromQueue(ctx context.Context) (*hold, error) {
	l, rw, name := q.l, q.rw, q.name
	data, err := rw.dir.Read()
	if err != nil {
		return nil, nil
	}
	if o, perr := stale.Parse(data); perr != nil || o.Mode != stale.ModeShared {
		return nil, nil
	}
	var h *hold
	handed := false
	err = rw.under(ctx, q.ws, func(s rwIn) error {
		if _, err := s.o.lstat(filepath.Join(rw.queue, name)); err != nil {
			return nil // handed the lock (the caller adopts), or dropped (it queues again)
		}
		waiting, err := s.waiters()
		if err != nil {
			return err
		}
		for _, w := range waiting {
			if w.writer {
				return nil
			}
		}
		// Handed the lock since the turn looked? A hand-over (S4) writes
		// our record in P before it removes our queue record, and that
		// removal can fail (or the hand-over stop between them): joining
		// then would leave the handed record naming this live process,
		// which no one takes away — the lock stuck for writers.
		if got, err := l.adopt(q.path, q.me.UUID, true, q.looked); err != nil || got != nil {
			h, handed = got, got != nil
			return err
		}
		// Out of the queue first: a queue record left behind would be
		// handed the lock beside our own hold.
		if s.dequeue(name) != nil {
			return nil // still queued: round again
		}
		h, _, err = s.join(q.ws)
		if errors.Is(err, errNotShared) {
			err = nil
		}
		return err
	})
	if handed {
		// As handedOver: the queue record goes, or it would be handed the
		// lock again after us; and the hold is proven first (outside the
		// guard: proving may need it).
		l.retry(func() error { return rw.removeQueued(name) })
		h = l.proveAdopted(ctx, q.ws, h)
	}
	return h, err
}
