package lockcore

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// A local line (W5): the writers waiting for one lock directory in one
// process take part in the queue one at a time, and so do the readers (a
// line for each kind, so that phases alternate as the queue has them do).
// Only a line's head queues in P.queue, watches for wake-ups and judges
// holders and other waiters; the others wait in memory, in order, and the
// next becomes head once the head holds or gives up. Without it, N waiters in a process each queued a
// record, each judged every other record a few times a heartbeat, each
// was woken by every release and each contended for the guard: work that
// grows with N at every handoff and with N² every heartbeat, and 1,000
// waiters were served at about one a second.
type line struct {
	users int // handles waiting in the line or heading it; under lines.mu

	mu     sync.Mutex
	headed bool       // a waiter is at the head
	next   *list.List // of *turn: the followers, in order
}

// turn is a follower's place; ch is closed when its wait is over: it heads
// the line, or (rider) it may join the group its head got into.
type turn struct {
	ch    chan struct{}
	rider bool
}

// lines holds a line for each path and kind that has waiters in this
// process, and only while it has them.
var lines = struct {
	sync.Mutex
	m map[string]*line
}{m: map[string]*line{}}

// lineKey names the line of path's writers or readers.
func lineKey(path string, writer bool) string {
	if writer {
		return path + "\x00w"
	}
	return path + "\x00r"
}

// enterLine returns the line key, counting the caller in until exit.
func enterLine(key string) *line {
	lines.Lock()
	defer lines.Unlock()
	ln := lines.m[key]
	if ln == nil {
		ln = &line{next: list.New()}
		lines.m[key] = ln
	}
	ln.users++
	return ln
}

// exit counts the caller out; the last to leave removes the line.
func (ln *line) exit(key string) {
	lines.Lock()
	defer lines.Unlock()
	if ln.users--; ln.users == 0 {
		delete(lines.m, key)
	}
}

// await returns once the caller heads the line (first: at once, nobody
// ahead), or rides along with a group (t.rider), or ctx is done. A head
// must call pass. follow is called if the caller waits behind others;
// front puts it before them (a rider that could not join).
func (ln *line) await(ctx context.Context, front bool, follow func()) (t *turn, first bool, err error) {
	t = &turn{ch: make(chan struct{})}
	ln.mu.Lock()
	if !ln.headed {
		ln.headed = true
		ln.mu.Unlock()
		return t, true, nil
	}
	var e *list.Element
	if front {
		e = ln.next.PushFront(t)
	} else {
		e = ln.next.PushBack(t)
	}
	ln.mu.Unlock()
	follow()
	select {
	case <-t.ch:
		return t, false, nil
	case <-ctx.Done():
	}
	ln.mu.Lock()
	select {
	case <-t.ch: // its wait ended as ctx did
		ln.mu.Unlock()
		if !t.rider {
			ln.pass(false) // made head: hand it on
		}
	default:
		ln.next.Remove(e)
		ln.mu.Unlock()
	}
	return t, false, ctx.Err()
}

// pass ends the head's turn: the next follower heads the line. A head
// that got a shared hold (joined) first lets every reader following it
// ride along into its group, as the queue lets every waiting reader in
// together (S4); readers that come later wait for the next reader phase.
func (ln *line) pass(joined bool) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for joined && ln.next.Len() > 0 {
		t := ln.next.Remove(ln.next.Front()).(*turn)
		t.rider = true
		close(t.ch)
	}
	e := ln.next.Front()
	if e == nil {
		ln.headed = false
		return
	}
	close(ln.next.Remove(e).(*turn).ch)
}

// waitInLine waits in this process's line for the path and, at its head,
// in the queue (waitQueued). blk is who was in the way at the caller's
// last try: a follower tells OnWait of it (the head tells of the holders
// as it waits in the queue). A waiter made head tries once more first: the
// holder it waited behind may be gone, or be a group it may join.
func (l *Lock) waitInLine(ctx context.Context, ws *waitState, writer bool, blk *LockedError) (*hold, error) {
	key := lineKey(l.store.Path(), writer)
	ln := enterLine(key)
	defer ln.exit(key)
	told, front := false, false
	follow := func() {
		if !told && l.cfg.OnWait != nil && blk != nil {
			told = true
			l.cfg.OnWait(&LockedError{Owners: blk.Owners, Cause: blk.Cause, Reason: blk.Reason + "; behind other waiters in this process"})
		}
	}
	for {
		t, first, err := ln.await(ctx, front, follow)
		if err != nil {
			return nil, err
		}
		if t.rider {
			if h, err := l.joinAlong(ctx, ws); h != nil || err != nil {
				return h, err
			}
			front = true // the group is gone: back in line, first
			continue
		}
		var h *hold
		if !first || front {
			h, err = l.tryHead(ctx, ws, writer)
		}
		if h == nil && err == nil {
			h, err = l.waitQueued(ctx, ws, writer)
		}
		ln.pass(h != nil && !writer)
		return h, err
	}
}

// joinAlong joins the group at P, if P is one, past any writers queued
// (they queued after the group's phase began).
func (l *Lock) joinAlong(ctx context.Context, ws *waitState) (*hold, error) {
	var h *hold
	err := l.rw.under(ctx, ws, func(s rwIn) error {
		data, err := s.dir.Read()
		if err != nil {
			return nil // no group: wait in line again
		}
		h, _, err = s.joinGroup(data, l.cfg.Clock.Now())
		if errors.Is(err, errNotShared) {
			return nil
		}
		return err
	})
	return h, err
}

// tryHead makes the tries Lock or RLock make before they queue.
func (l *Lock) tryHead(ctx context.Context, ws *waitState, writer bool) (*hold, error) {
	for range 4 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var h *hold
		var blk *LockedError
		var err error
		if writer {
			h, blk, err = l.attempt(ctx, ws)
		} else {
			h, blk, err = l.tryShared(ctx, ws)
		}
		if h != nil || err != nil || blk != nil {
			return h, err
		}
	}
	return nil, nil
}
