package lockcore

import (
	"context"
	"path/filepath"
	"strconv"

	"github.com/dotlock/dotlock/stale"
)

// The queue's host line (W8, docs/PROTOCOL.md): the queued writers of one
// host for one lock directory on a network filesystem take turns at
// looking at the server, as a lock file's waiters do (W6); the head rings
// the line's bell when its look finds the lock handed to another process
// of this host. Writers only: a queued reader also joins a group holding
// P, which only its own look can find.

// queueLineSuffix sets the queue's line file apart from a lock file's (W6).
const queueLineSuffix = ".queue"

// joinLine puts the waiter in its host's line, the first time it is
// called, and returns its place (nil if it has none). fresh says it was
// only now put there: the caller looks again before it waits, since a
// ring before the bell's watch was set is missed.
func (q *queuedWait) joinLine() (line *hostLine, fresh bool) {
	if q.line != nil || q.noLine {
		return q.line, false
	}
	q.noLine = true
	path := q.l.store.Path()
	if !q.writer || !knownNetworkFS(filepath.Dir(path)) {
		return nil, false
	}
	// A follower looks twice a heartbeat period, not once as W6's do: its
	// looks also heartbeat its queue record, which others drop once it
	// stands still for the lease.
	cfg := &q.l.cfg
	line = newHostLine(path, queueLineSuffix, max(cfg.PollMax, cfg.Heartbeat/2))
	if line == nil {
		return nil, false
	}
	stop, ok := watchPathOK(line.f.bellPath(), q.l.wake)
	if !ok {
		// A follower that cannot hear the bell would learn of a hand-over
		// only at its own look: no line, each waiter polls.
		line.f.close()
		return nil, false
	}
	q.line, q.noLine, q.stopBell = line, false, stop
	return line, true
}

// closeLine leaves the host's line, if the waiter is in one. A head that
// gives up (ring) rings the bell once its flock is free: a follower tries
// for the head when woken, and otherwise only after its backoff (up to
// PollMax), while no one of this host looks at the server. A head that
// leaves with the lock does not: its release, made here, wakes them (W1).
func (q *queuedWait) closeLine(ring bool) {
	if q.line == nil {
		return
	}
	q.stopBell()
	q.line.f.close()
	if ring && q.line.head {
		q.line.f.ring()
	}
	q.line = nil
}

// pause is the queued waiter's wait before its next look: a follower in
// its host's line waits for its turn, the bell, or its own look; anyone
// else as W1–W3 say.
func (q *queuedWait) pause(ctx context.Context, woken <-chan struct{}) error {
	line, fresh := q.joinLine()
	switch {
	case fresh:
		return ctx.Err()
	case line != nil && !line.head:
		return q.ws.awaitTurn(ctx, line, woken)
	}
	return q.ws.pause(ctx, woken, false)
}

// ringFor rings the line's bell if the waiter heads its line and data,
// the record its look found at P, is a hand-over it has not rung for to
// a writer of this host; it reports whether it rang.
func (q *queuedWait) ringFor(data []byte) bool {
	if q.line == nil || !q.line.head {
		return false
	}
	o, err := stale.Parse(data)
	if err != nil || o.Mode != stale.ModeExclusive || o.UUID == q.me.UUID || stale.Of(o) != q.l.cfg.Checker.Local {
		return false
	}
	// A waiter whose hand-over lapsed queues again under its UUID: each
	// hand-over has a token of its own.
	handOver := o.UUID + "/" + strconv.FormatUint(o.Token, 10)
	if handOver == q.rung {
		return false
	}
	q.rung = handOver
	q.line.f.ring()
	return true
}
