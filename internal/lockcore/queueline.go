package lockcore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// The queue's host line (W8). On a network filesystem each queued writer
// of a lock directory looked at the server at every poll (a look: about a
// dozen calls), N processes of one host waiting for one lock N times as
// often as one. So they take turns, as a lock file's waiters do (W6): the
// head of the host's line, whoever holds the flock of a local file named
// after the lock, looks as before; the others look twice a heartbeat
// period, in case the head is stuck, and otherwise wait to head the line.
// Every waiter keeps its own queue record (S2), so the queue's order, and
// who is handed the lock, do not depend on the line. A follower the lock
// is handed to learns it from the head: a look that finds P handed to a
// process of this host rings the line's bell, a file made and removed in
// the private directory of lines, whose change (inotify) wakes the
// followers to look. Only writers: a queued reader also joins a group
// that holds P when no writer queues (S3), which only its own look can
// find.

// queueLineSuffix sets the queue's line file apart from a lock file's (W6).
const queueLineSuffix = ".queue"

// hostLine returns the waiter's place in its host's line, or nil if it
// has none; fresh says it was only now made, and the bell's watch set
// up: then the caller looks again before it waits, since a ring before
// the watch is missed.
func (q *queuedWait) hostLine() (line *hostLine, fresh bool) {
	if q.line != nil || q.noLine {
		return q.line, false
	}
	path := q.l.store.Path()
	if !q.writer || !knownNetworkFS(filepath.Dir(path)) {
		q.noLine = true
		return nil, false
	}
	sum := sha256.Sum256([]byte(path))
	f, ok := openHostLine(hex.EncodeToString(sum[:16]) + queueLineSuffix)
	if !ok {
		q.noLine = true
		return nil, false
	}
	// A follower looks twice a heartbeat period, not once as W6's do: its
	// looks also heartbeat its queue record, which others drop once it
	// stands still for the lease.
	cfg := &q.l.cfg
	every := max(cfg.PollMax, cfg.Heartbeat/2)
	q.line = &hostLine{f: f, every: every, lookNext: time.Now().Add(every)}
	q.stopBell = watchPath(f.bellPath(), q.l.wake)
	return q.line, true
}

// closeLine leaves the host's line, if the waiter is in one.
func (q *queuedWait) closeLine() {
	if q.line != nil {
		q.stopBell()
		q.line.f.close()
		q.line = nil
	}
}

// pause is the queued waiter's wait before its next look: a follower in
// its host's line waits for its turn, the bell, or its own look; anyone
// else as W1–W3 say.
func (q *queuedWait) pause(ctx context.Context, woken <-chan struct{}) error {
	line, fresh := q.hostLine()
	switch {
	case fresh:
		return ctx.Err()
	case line != nil && !line.head:
		return q.ws.awaitTurn(ctx, line, woken)
	}
	return q.ws.pause(ctx, woken, false)
}

// ringFor rings the line's bell when the head's look found P handed to
// another process of this host (data, its record), once a hand-over.
func (q *queuedWait) ringFor(data []byte) {
	if q.line == nil || !q.line.head {
		return
	}
	o, err := stale.Parse(data)
	if err != nil || o.UUID == q.me.UUID || o.UUID == q.rung || stale.Of(o) != q.l.cfg.Checker.Local {
		return
	}
	q.rung = o.UUID
	q.line.f.ring()
}
