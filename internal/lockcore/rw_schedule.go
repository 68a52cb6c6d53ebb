package lockcore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// kick hands the lock to waiters if it is free and anyone queues. Called
// after an exclusive release. If the guard is busy, its holder (or a
// waiter, woken by its release or polling) hands on.
func (rw *rwSupport) kick(o *opDir) {
	if !rw.queued(o) {
		return
	}
	o.close() // the hand-on's guard section opens its own
	rw.l.wake.notify()
	ctx, cancel := context.WithTimeout(context.Background(), rw.l.cfg.StaleAfter)
	defer cancel()
	rw.schedOnce(ctx, rw.l.newWaitState())
}

// schedOnce runs schedule under the guard if the guard is free.
func (rw *rwSupport) schedOnce(ctx context.Context, ws *waitState) error {
	err := rw.l.withGuardIn(ctx, ws, func(_ time.Time, o *opDir) error { return rw.in(o).schedule() })
	if errors.Is(err, errGuardBusy) {
		return nil
	}
	return err
}

// dissolve removes a group with no readers left (its anchor goes to
// P.last, publishing the group's last token), then hands the lock on.
// Under the guard.
func (rw rwIn) dissolve() error {
	data, err := rw.dir.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return rw.schedule()
	}
	if err != nil {
		return err
	}
	o, perr := stale.Parse(data)
	if perr != nil || o.Mode != stale.ModeShared {
		return nil // not a group (any more): nothing of ours to do
	}
	ok, err := rw.dir.Retire(true, func(m []byte) bool { return bytes.Equal(m, data) })
	if err != nil || !ok {
		return err // readers left, or it changed: leave it
	}
	return rw.scheduleFreed()
}

// readerLeft runs under the guard after a reader's record is gone (S5).
func (rw rwIn) readerLeft() error {
	if err := rw.dissolve(); err != nil {
		return err
	}
	rw.l.wake.notify()
	return nil
}

// lastMode is the mode of the last hold that left P, if any did.
func (rw rwIn) lastMode() (string, bool) {
	if last, err := rw.dir.ReadLast(); err == nil {
		if o, err := stale.Parse(last); err == nil {
			return o.Mode, true
		}
	}
	return "", false
}

// schedule hands a free P to the queue (S4): after a writer, all waiting
// readers together; after readers, the first waiting writer; a writer
// queued before a reader still goes first when no group preceded. Under
// the guard.
func (rw rwIn) schedule() error { return rw.scheduleIf(false) }

// scheduleFreed is schedule right after P was removed (a group dissolved,
// a dead holder's lock broken): a queue is then rarer than a writer that
// took P since, so the queue is looked at first — one call when there is
// none, instead of a lookup of P and then of the queue.
func (rw rwIn) scheduleFreed() error { return rw.scheduleIf(true) }

func (rw rwIn) scheduleIf(queueFirst bool) error {
	var q *queueListing
	var err error
	if queueFirst {
		if q, err = rw.openQueue(); q == nil {
			return err // no queue: no one to hand to
		}
	}
	if _, err := rw.o.lstat(rw.dir.Path()); !errors.Is(err, fs.ErrNotExist) {
		// Held: its holder hands on when it leaves. Or not known (an I/O
		// error): taken for free, P was handed on with a token read before
		// its holder's release (which needs no guard) published a greater
		// one, and the same token was issued twice (P7).
		if q != nil {
			q.close()
		}
		return err
	}
	if q == nil {
		if q, err = rw.openQueue(); q == nil {
			return err // no queue: no one to hand to
		}
	}
	return rw.handOn(q)
}

// handOn hands the free P to the queue listed in q (S4), and closes q.
// Under the guard.
func (rw rwIn) handOn(q *queueListing) error {
	ws := q.nextTurn()
	q.close() // before the rmdir (Windows)
	if len(ws) == 0 {
		rw.o.rmdir(rw.queue) // only if empty
		return nil
	}
	var readers, writers []waiter
	for _, w := range ws {
		if w.writer {
			writers = append(writers, w)
		} else {
			readers = append(readers, w)
		}
	}
	defer rw.l.wake.notify()
	last, err := rw.l.lastToken(rw.dir, &rw.last)
	if errors.Is(err, ErrNotLock) {
		return err // a neighbour's file at P.last: the waiters are told
	}
	if err != nil {
		return nil // P.last unreadable for now: a later schedule hands on
	}
	now := rw.l.cfg.Clock.Now()
	readersTurn := len(writers) == 0
	if len(readers) > 0 && len(writers) > 0 {
		if mode, ok := rw.lastMode(); ok {
			readersTurn = mode != stale.ModeShared // phases alternate
		} else {
			readersTurn = readers[0].seq < writers[0].seq // no history: queue order
		}
	}
	n := uint64(1)
	if readersTurn {
		n = uint64(len(readers))
	}
	token, err := nextToken(last, n)
	if err != nil {
		return err
	}
	if readersTurn {
		// A group for every waiting reader.
		anchor, err := stale.Self(token+uint64(len(readers))-1, stale.ModeShared, now)
		if err != nil {
			return err
		}
		if err := rw.createP(anchor.Marshal()); err != nil {
			return ignoreExist(err)
		}
		for i, r := range readers {
			o := r.owner
			o.Token, o.Acquired, o.Mode = token+uint64(i), now, stale.ModeShared
			if err := rw.l.writeNewIn(rw.o, rw.dir.Path(), readerPrefix+o.UUID, o.Marshal()); err != nil {
				return err
			}
			rw.dequeue(r.name)
		}
		return nil
	}
	w := writers[0]
	o := w.owner
	o.Token, o.Acquired, o.Mode = token, now, stale.ModeExclusive
	if err := rw.createP(o.Marshal()); err != nil {
		return ignoreExist(err)
	}
	rw.dequeue(w.name)
	return nil
}

// ignoreExist: a writer that did not see the queue took P first (a bounded
// barge: its release hands P to the queue).
func ignoreExist(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// createP makes P with the given owner record. Under the guard, with P free.
func (rw rwIn) createP(rec []byte) error {
	e, err := rw.dir.Create(fs.FileMode(rw.l.cfg.Perm))
	if err != nil {
		return err
	}
	defer e.Close()
	if _, err := e.WriteAt(rec, 0); err != nil {
		return err
	}
	if rw.l.sync {
		return e.Sync()
	}
	return nil
}
