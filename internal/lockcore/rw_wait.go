package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// adopt returns a hold if the record at path names uuid: the lock was
// handed to this waiter (S4).
func (l *Lock) adopt(path string, uuid string, shared bool) (*hold, error) {
	d, err := openLockDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.close()
	// Read through the descriptor the hold will heartbeat through.
	e, data, err := d.openRecord(filepath.Base(path))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	o, perr := stale.Parse(data)
	if perr != nil || o.UUID != uuid {
		e.Close()
		return nil, nil
	}
	h := l.newHold(o, e, l.cfg.Clock.Now())
	if shared {
		l.rw.makeShared(h, path)
	}
	return h, nil
}

// waitQueued queues the caller (S2) and waits until the lock is handed to
// it (S3), judging and breaking dead holders meanwhile.
func (l *Lock) waitQueued(ctx context.Context, ws *waitState, writer bool) (*hold, error) {
	rw := l.rw
	mode := stale.ModeShared
	if writer {
		mode = stale.ModeExclusive
	}
	me, err := stale.Self(0, mode, l.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	path := rw.dir.owner()
	if !writer {
		path = rw.readerPath(me.UUID)
	}
	var name string
	var qe Entry // our queue record, open for its heartbeats
	defer func() {
		if qe != nil {
			qe.Close()
		}
	}()
	enqueue := func() error {
		// A new beat each time: a record dropped as a dead remote waiter's
		// and written again must not read the same, or whoever dropped it
		// (its observation of those bytes running on) drops it again at
		// once, for good.
		me.Beat++
		me.BeatTime = l.cfg.Clock.Now()
		return rw.under(ctx, ws, func() error {
			if qe != nil {
				qe.Close()
			}
			var err error
			if name, qe, err = rw.enqueue(me, writer); err != nil {
				return err
			}
			return rw.schedule()
		})
	}
	if err := enqueue(); err != nil {
		if name != "" {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
		return nil, err
	}
	var last string
	lastBeat := l.cfg.Clock.Now()
	var lastObserved time.Time
	for {
		// Some turns come round without pausing (queued again, a watch
		// just set up): the context is checked here, not only in pause.
		if err := ctx.Err(); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
		woken := l.wake.channel()
		now := l.cfg.Clock.Now()
		if now.Sub(lastBeat) >= l.cfg.Heartbeat {
			rw.beatQueued(qe, name, &me, now)
			lastBeat = now
		}
		// Every other waiter's record is judged: a few times a heartbeat
		// is enough to see one stand still, and far cheaper than at every
		// wake-up.
		if now.Sub(lastObserved) >= l.cfg.Heartbeat/4 {
			rw.observeQueue()
			lastObserved = now
		}
		// S3: has the lock been handed to us? Look at the queue first: a
		// handoff writes P before it removes the queue record.
		_, qerr := os.Lstat(filepath.Join(rw.queue, name))
		if h, err := l.adopt(path, me.UUID, !writer); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		} else if h != nil {
			// The hand-over removed our queue record, unless it failed
			// half-way (S4 writes P first). Left there, the record would be
			// handed the lock again after us, and never take it: it names
			// this live process. (Only the record: the queue directory is
			// removed under the guard.)
			l.retry(func() error { return rw.removeQueued(name) })
			return h, nil
		}
		if errors.Is(qerr, fs.ErrNotExist) {
			// Out of the queue yet not holding: handed to us and taken away
			// again (a lapsed lease), or dropped. Queue again.
			if err := enqueue(); err != nil {
				return nil, l.leaveQueue(name, path, me.UUID, writer, err)
			}
			continue
		}
		// A reader whose queue holds no writer (the writer it queued
		// behind gave up) joins a group that holds P, rather than wait for
		// the group to dissolve while later readers join it.
		if !writer {
			if h, err := l.joinFromQueue(ctx, ws, name); err != nil || h != nil {
				if err != nil {
					return nil, l.leaveQueue(name, path, me.UUID, writer, err)
				}
				return h, nil
			}
		}
		// Judge what holds P; a free P is handed on under the guard.
		var blk *LockedError
		if _, err := os.Lstat(rw.dir.Path()); errors.Is(err, fs.ErrNotExist) {
			// One try: a busy guard means someone is handing on right now,
			// and its release wakes this waiter (W1) or its poll finds it.
			err = rw.schedOnce(ctx, ws)
			if err != nil {
				return nil, l.leaveQueue(name, path, me.UUID, writer, err)
			}
		} else if blk, err = l.inspect(ctx, ws); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
		// Not told of itself: handed the lock since the look above, it
		// adopts it next turn.
		if blk != nil && l.cfg.OnWait != nil && !slices.ContainsFunc(blk.Owners, func(o stale.Owner) bool { return o.UUID == me.UUID }) {
			if s := blk.Error(); s != last {
				last = s
				l.cfg.OnWait(blk)
			}
		}
		if ws.follow(blk) {
			continue
		}
		if err := ws.pause(ctx, woken, false); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
	}
}

// leaveQueue takes a waiter that gives up out of the queue; if the lock was
// handed to it meanwhile, it is released (and handed on). It returns err.
func (l *Lock) leaveQueue(name, path, uuid string, writer bool, err error) error {
	ws := l.newWaitState()
	// Tried again on failure: a queue record, or a lock handed to it, left
	// behind names this live process, and would block this host for good.
	l.retry(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StaleAfter)
		defer cancel()
		if err := l.rw.under(ctx, ws, func() error { return l.rw.dequeue(name) }); err != nil {
			return err
		}
		h, err := l.adopt(path, uuid, !writer)
		if err != nil || h == nil {
			return err
		}
		return l.release(h) // handed to us meanwhile: hand it on
	})
	return err
}
