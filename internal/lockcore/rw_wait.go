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
// handed to this waiter (S4). since is the latest time, by this process's
// clock, before which the record cannot have been written (zero if
// unknown): the hold is credited with no proof after it. Others judge the
// record's lease from when they first saw it, not from when its adopter
// found it: credited from the adoption, a hand-over noticed late (a waiter
// paused, a stall under emulation) counted as proved while another host,
// watching it unchanged since it was written, broke it (TestCluster chaos:
// Unlock lost a hold it last proved 2.7 s before, lease 3 s). See
// proveAdopted.
func (l *Lock) adopt(path string, uuid string, shared bool, since time.Time) (*hold, error) {
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
	h := l.newHold(o, e, since)
	if shared {
		l.rw.makeShared(h, path)
	}
	return h, nil
}

// proveAdopted returns h, just adopted, once it is proven: an adoption
// whose record may have stood unchanged for half the lease or more is
// proven at once, under the guard (H3, waiting for it until ctx is done),
// so that no breaker that judged it lapsed is at work when its holder
// starts to rely on it. Lost, or not proven by then, h is closed and nil
// returned: the record, if still ours, is adopted again at the next look.
// Never called under the guard. ws keeps what the tries watched of the
// guard, so that a guard its dead holder left is judged stale and broken,
// as a waiter breaks it, and not waited for until ctx is done.
func (l *Lock) proveAdopted(ctx context.Context, ws *waitState, h *hold) *hold {
	for l.lapsed(h, l.cfg.Clock.Now()) {
		if l.beat(h, ws) != nil || (l.lapsed(h, l.cfg.Clock.Now()) && ws.pauseGuard(ctx) != nil) {
			h.entry.Close()
			return nil
		}
	}
	return h
}

// waitQueued queues the caller (S2) and waits until the lock is handed to
// it (S3), judging and breaking dead holders meanwhile.
func (l *Lock) waitQueued(ctx context.Context, ws *waitState, writer bool) (*hold, error) {
	q, err := l.newQueuedWait(ws, writer)
	if err != nil {
		return nil, err
	}
	defer q.closeRecord()
	defer q.closeLine(false)
	q.looked = l.cfg.Clock.Now() // nothing can be handed to it before it queues
	if err := q.enqueue(ctx); err != nil {
		if q.name != "" {
			return nil, q.leave(err)
		}
		return nil, err
	}
	q.lastBeat = l.cfg.Clock.Now()
	for {
		h, err := q.turn(ctx)
		if err != nil {
			return nil, q.leave(err)
		}
		if h != nil {
			return h, nil
		}
	}
}

// queuedWait is one waiter in the queue: its record, and what it
// remembers between turns.
type queuedWait struct {
	l      *Lock
	rw     *rwSupport
	ws     *waitState
	writer bool
	me     stale.Owner // the queue record's owner
	path   string      // the record it holds once handed the lock
	name   string      // its queue record
	qe     Entry       // the queue record, open for its heartbeats

	lastWait     string    // the last blocker told to OnWait
	lastBeat     time.Time // the queue record's last heartbeat
	lastObserved time.Time // when the queue was last observed
	looked       time.Time // when the last look that found nothing handed began

	// W8 (queueline.go)
	line     *hostLine // its place in its host's line
	noLine   bool      // it has none
	stopBell func()    // ends the watch of the line's bell
	rung     string    // the hand-over (record UUID and token) the head last rang for
}

// ownerLook is what the lock store's Read returned: a writer's look at P's
// record, which tells it whether it was handed the lock and, if not, is
// judged.
type ownerLook struct {
	data []byte
	err  error
}

func (l *Lock) newQueuedWait(ws *waitState, writer bool) (*queuedWait, error) {
	mode := stale.ModeShared
	if writer {
		mode = stale.ModeExclusive
	}
	me, err := stale.Self(0, mode, l.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	q := &queuedWait{l: l, rw: l.rw, ws: ws, writer: writer, me: me, path: l.rw.dir.owner()}
	if !writer {
		q.path = l.rw.readerPath(me.UUID)
	}
	return q, nil
}

func (q *queuedWait) closeRecord() {
	if q.qe != nil {
		q.qe.Close()
	}
}

// enqueue puts the waiter's record in the queue (S2), again if it was
// dropped, and hands a free P on.
func (q *queuedWait) enqueue(ctx context.Context) error {
	// A new beat each time: a record dropped as a dead remote waiter's
	// and written again must not read the same, or whoever dropped it
	// (its observation of those bytes running on) drops it again at
	// once, for good.
	q.me.Beat++
	q.me.BeatTime = q.l.cfg.Clock.Now()
	return q.rw.under(ctx, q.ws, func(s rwIn) error {
		q.closeRecord()
		var err error
		if q.name, q.qe, err = s.enqueue(q.me, q.writer); err != nil {
			return err
		}
		return s.schedule()
	})
}

// leave takes the waiter out of the queue (leaveQueue) and returns err.
// It leaves its host's line first: its followers need not wait on a head
// that is leaving.
func (q *queuedWait) leave(err error) error {
	q.closeLine(true)
	return q.l.leaveQueue(q.name, q.path, q.me.UUID, q.writer, err)
}

// turn is one round of the wait. It returns the hold once the lock is
// handed over, an error to give up with, or neither to go round again.
func (q *queuedWait) turn(ctx context.Context) (*hold, error) {
	// Some turns come round without pausing (queued again, a watch
	// just set up): the context is checked here, not only in pause.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	woken := q.l.wake.channel()
	q.keepUp()
	h, queued, look, err := q.handedOver(ctx)
	if err != nil || h != nil {
		return h, err
	}
	if !queued {
		// Out of the queue yet not holding: handed to us and taken away
		// again (a lapsed lease), or dropped. Queue again.
		return nil, q.enqueue(ctx)
	}
	// A reader whose queue holds no writer (the writer it queued
	// behind gave up) joins a group that holds P, rather than wait for
	// the group to dissolve while later readers join it.
	if !q.writer {
		if h, err := q.joinFromQueue(ctx); err != nil || h != nil {
			return h, err
		}
	}
	blk, err := q.judgeHolder(ctx, look)
	if err != nil {
		return nil, err
	}
	q.tellWait(blk)
	if q.ws.follow(blk) {
		return nil, nil
	}
	return nil, q.pause(ctx, woken)
}

// keepUp heartbeats the waiter's queue record, and observes the others'.
func (q *queuedWait) keepUp() {
	cfg := &q.l.cfg
	now := cfg.Clock.Now()
	if now.Sub(q.lastBeat) >= cfg.Heartbeat {
		q.rw.beatQueued(q.qe, q.name, &q.me, now)
		q.lastBeat = now
	}
	// Every other waiter's record is judged: a few times a heartbeat
	// is enough to see one stand still, and far cheaper than at every
	// wake-up.
	if now.Sub(q.lastObserved) >= cfg.Heartbeat/4 {
		q.rw.observeQueue()
		q.lastObserved = now
	}
}

// handedOver (S3) returns the hold if the lock has been handed to the
// waiter; else whether its record is still queued, and for a writer its
// look at P's record, for judgeHolder.
func (q *queuedWait) handedOver(ctx context.Context) (h *hold, queued bool, look *ownerLook, err error) {
	// Look at the queue first: a handoff writes P before it removes the
	// queue record.
	start := q.l.cfg.Clock.Now()
	_, qerr := os.Lstat(filepath.Join(q.rw.queue, q.name))
	if q.writer {
		// Read as the store reads a record to judge it (exactly: past a
		// network client's cache); adopt reads it again, through the
		// descriptor the hold keeps, only once it names us.
		data, rerr := q.l.store.Read()
		if o, perr := stale.Parse(data); rerr != nil || perr != nil || o.UUID != q.me.UUID {
			q.ringFor(data)
			if rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
				q.looked = start // handed after this look, if at all
			}
			return nil, !errors.Is(qerr, fs.ErrNotExist), &ownerLook{data, rerr}, nil
		}
	}
	h, err = q.l.adopt(q.path, q.me.UUID, !q.writer, q.looked)
	if err != nil {
		return nil, false, nil, err
	}
	if h == nil {
		q.looked = start // handed after this look, if at all
		return nil, !errors.Is(qerr, fs.ErrNotExist), nil, nil
	}
	if h = q.l.proveAdopted(ctx, q.ws, h); h == nil {
		return nil, true, nil, nil // round again: adopted again, or lost
	}
	// The hand-over removed our queue record, unless it failed half-way
	// (S4 writes P first). Left there, the record would be handed the lock
	// again after us, and never take it: it names this live process. (Only
	// the record: the queue directory is removed under the guard.)
	q.l.retry(func() error { return q.rw.removeQueued(q.name) })
	return h, false, nil, nil
}

// judgeHolder judges what holds P — what look found there, if the turn
// has one — returning who blocks; a free P is handed on under the guard.
func (q *queuedWait) judgeHolder(ctx context.Context, look *ownerLook) (*LockedError, error) {
	free := false
	if look != nil {
		if !errors.Is(look.err, fs.ErrNotExist) {
			return q.l.inspectRead(ctx, q.ws, look.data, look.err)
		}
		free = true
	} else {
		_, err := os.Lstat(q.rw.dir.Path())
		free = errors.Is(err, fs.ErrNotExist)
	}
	if free {
		// One try: a busy guard means someone is handing on right now,
		// and its release wakes this waiter (W1) or its poll finds it.
		return nil, q.rw.schedOnce(ctx, q.ws)
	}
	return q.l.inspect(ctx, q.ws)
}

// tellWait tells OnWait who blocks, once per change. Not told of itself:
// handed the lock since the look, the waiter adopts it next turn.
func (q *queuedWait) tellWait(blk *LockedError) {
	onWait := q.l.cfg.OnWait
	if blk == nil || onWait == nil || slices.ContainsFunc(blk.Owners, func(o stale.Owner) bool { return o.UUID == q.me.UUID }) {
		return
	}
	if s := blk.Error(); s != q.lastWait {
		q.lastWait = s
		onWait(blk)
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
		err := l.rw.under(ctx, ws, func(s rwIn) error { return s.dequeue(name) })
		if errors.Is(err, errNoGuard) {
			// Out of the queue without the guard, as a waiter handed the
			// lock leaves it (handedOver): a record left would be handed
			// the lock once the file at P.break is gone, and never taken.
			err = l.rw.removeQueued(name)
		}
		if err != nil {
			return err
		}
		h, err := l.adopt(path, uuid, !writer, time.Time{}) // unproven: R3
		if err != nil || h == nil {
			return err
		}
		return l.release(h) // handed to us meanwhile: hand it on
	})
	return err
}
