package lockcore

import (
	"container/list"
	"context"
	"sync"
)

// A local line (W5): the waiters for one lock directory in one process
// take part in the queue one at a time. Only the line's head queues in
// P.queue, watches for wake-ups and judges holders and other waiters; the
// others wait in memory, in order, and the next becomes head once the head
// holds or gives up. Without it, N waiters in a process each queued a
// record, each judged every other record a few times a heartbeat, each
// was woken by every release and each contended for the guard: work that
// grows with N² per handoff, and 1,000 waiters were served at a few a
// second.
type line struct {
	users int // handles waiting in the line or heading it; under lines.mu

	mu     sync.Mutex
	headed bool       // a waiter is at the head
	next   *list.List // of chan struct{}: followers, closed when made head
}

// lines holds a line for each path that has waiters in this process, and
// only while it has them.
var lines = struct {
	sync.Mutex
	m map[string]*line
}{m: map[string]*line{}}

// enterLine returns the line for path, counting the caller in until exit.
func enterLine(path string) *line {
	lines.Lock()
	defer lines.Unlock()
	ln := lines.m[path]
	if ln == nil {
		ln = &line{next: list.New()}
		lines.m[path] = ln
	}
	ln.users++
	return ln
}

// exit counts the caller out; the last to leave removes the line.
func (ln *line) exit(path string) {
	lines.Lock()
	defer lines.Unlock()
	if ln.users--; ln.users == 0 {
		delete(lines.m, path)
	}
}

// await returns once the caller heads the line (first: at once, with no
// one ahead of it), or when ctx is done; after a nil error the caller must
// call pass. follow is called if the caller has to wait behind others.
func (ln *line) await(ctx context.Context, follow func()) (first bool, err error) {
	ln.mu.Lock()
	if !ln.headed {
		ln.headed = true
		ln.mu.Unlock()
		return true, nil
	}
	turn := make(chan struct{})
	e := ln.next.PushBack(turn)
	ln.mu.Unlock()
	follow()
	select {
	case <-turn:
		return false, nil
	case <-ctx.Done():
	}
	ln.mu.Lock()
	select {
	case <-turn: // made head as ctx ended: hand it on
		ln.mu.Unlock()
		ln.pass()
	default:
		ln.next.Remove(e)
		ln.mu.Unlock()
	}
	return false, ctx.Err()
}

// pass makes the next follower head, if any.
func (ln *line) pass() {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	e := ln.next.Front()
	if e == nil {
		ln.headed = false
		return
	}
	close(ln.next.Remove(e).(chan struct{}))
}

// waitInLine waits in this process's line for the path and, at its head,
// in the queue (waitQueued). blk is who was in the way at the caller's
// last try: a follower tells OnWait of it (the head tells of the holders
// as it waits in the queue). A waiter made head tries once more first: the
// holder it waited behind may be gone, or be a group it may join.
func (l *Lock) waitInLine(ctx context.Context, ws *waitState, writer bool, blk *LockedError) (*hold, error) {
	path := l.store.Path()
	ln := enterLine(path)
	defer ln.exit(path)
	first, err := ln.await(ctx, func() {
		if l.cfg.OnWait != nil && blk != nil {
			l.cfg.OnWait(&LockedError{Owners: blk.Owners, Reason: blk.Reason + "; behind other waiters in this process"})
		}
	})
	if err != nil {
		return nil, err
	}
	defer ln.pass() // once held, or given up: the next waiter's turn
	if !first {
		if h, err := l.tryHead(ctx, ws, writer); h != nil || err != nil {
			return h, err
		}
	}
	return l.waitQueued(ctx, ws, writer)
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
