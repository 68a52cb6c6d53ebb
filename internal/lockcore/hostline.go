package lockcore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"path/filepath"
	"time"
)

// The host line (W6). On a network filesystem every look at a lock is a
// round trip to the server, and N processes of one host waiting for one
// lock each polled it: N times the calls, for nothing a single poller
// would not see. So the waiters of one host (and user) for one lock file
// take turns: the head of the line, whoever holds a local flock on a file
// named after the lock, waits as a lone waiter does; the others send the
// server nothing but one look each per heartbeat period, in case the head
// is stuck (stopped, or paused by the kernel), and otherwise wait to head
// the line, which they try for whenever something at the lock path
// changes on this host (inotify, W1), or a release in this process wakes
// them, and at least every PollMax. The head leaves the line when its wait
// ends: it holds the lock, gave up, or failed.
//
// A line is a hint, as P.want is: a waiter that cannot have one (no
// private directory for it: see openHostLine) waits as before, and no
// property depends on who heads a line.

// netWait is what a lock file's waiter on a network filesystem keeps
// for W6 (its place in its host's line, and its probes) and W7.
type netWait struct {
	line      *hostLine
	noLine    bool         // it has none
	probed    bool         // the last try was a probe
	seen      *LockedError // who the last whole look found in the way
	lookedAt  time.Time    // when
	woke      bool         // woken since
	since     time.Time    // when it was first found blocked
	marked    time.Time    // when it last marked P.want (W7)
	longAhead bool         // the last look found a long waiter's mark (W7)
	gaveWay   time.Time    // the mark it last gave way to (W7)
	heldAt    time.Time    // the time of the record the last look found at P
}

// hostLine is one waiter's place in its host's line.
type hostLine struct {
	f        lineFile
	head     bool
	retry    time.Duration // until the next try for the head
	every    time.Duration // how often a follower looks at the server itself
	lookNext time.Time     // when it next does
}

// hostLineFor returns the waiter's line, or nil if it cannot have one.
func (ws *waitState) hostLineFor() *hostLine {
	n := ws.net
	if n.line != nil || n.noLine {
		return n.line
	}
	line := newHostLine(ws.l.store.Path(), "", ws.lookEvery())
	if line == nil {
		n.noLine = true
		return nil
	}
	n.line = line
	ws.stops = append(ws.stops, func() { line.f.close(); n.line = nil })
	return n.line
}

// newHostLine opens the line of the lock at path (its file named after the
// path, with suffix), in which a follower looks at the server itself every
// every; nil if it cannot have one.
func newHostLine(path, suffix string, every time.Duration) *hostLine {
	sum := sha256.Sum256([]byte(path))
	f, ok := openHostLine(hex.EncodeToString(sum[:16]) + suffix)
	if !ok {
		return nil
	}
	return &hostLine{f: f, every: every, lookNext: time.Now().Add(every)}
}

// lookEvery is how often a follower looks at the server itself.
func (ws *waitState) lookEvery() time.Duration {
	return max(ws.l.cfg.PollMax, ws.l.cfg.Heartbeat)
}

// awaitTurn is a blocked waiter's pause when it does not head its host's
// line: it returns, for the caller to look at the lock, once it heads the
// line, or woken fires (something changed here, or a release in this
// process: the head may have left with the lock), or it is time for its
// own look; or with ctx's error.
func (ws *waitState) awaitTurn(ctx context.Context, line *hostLine, woken <-chan struct{}) error {
	pollMax := ws.l.cfg.PollMax
	for {
		if line.f.tryLock() {
			line.head = true
			return nil
		}
		now := time.Now()
		if !now.Before(line.lookNext) {
			line.lookNext = now.Add(line.every)
			return nil
		}
		line.retry = min(max(2*line.retry, time.Millisecond), pollMax)
		d := min(line.retry/2+rand.N(line.retry/2+1), line.lookNext.Sub(now))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-woken:
			t.Stop()
			line.retry = 0
			ws.wokeUp()
			line.head = line.f.tryLock()
			return nil
		case <-t.C:
		}
	}
}

// Probes (W6). A waiter for a lock file on a network filesystem that
// looked at the holder's record a moment ago, and was not woken since,
// tries only the exclusive create: one call, which reaches the server
// whatever the client caches (no client answers an O_EXCL lookup from its
// cache), where a whole look also reads the record and announces the
// waiter (about five calls). A whole look still comes at least every
// lookMax (or half a heartbeat period, if shorter), for a remote holder's
// lease, and after every wake-up (a local holder's exit among them, W2).
// So the host's head tries every probeMax at most, for fewer calls than
// it used to send at PollMax.
const (
	probeMax = 10 * time.Millisecond
	lookMax  = 250 * time.Millisecond
)

// netWaits reports whether W6 applies to waiters on this lock: a lock
// file on a network filesystem (a lock directory's waiters queue, S2).
func (l *Lock) netWaits() bool {
	_, file := l.kind.(fileLayout)
	return file && knownNetworkFS(filepath.Dir(l.store.Path()))
}

// probeOK reports whether this try may be a probe: held, as last seen.
func (ws *waitState) probeOK() bool {
	n := ws.net
	return n != nil && n.seen != nil && !n.woke &&
		time.Since(n.lookedAt) < min(ws.l.cfg.Heartbeat/2, lookMax)
}

// looked notes a whole look, and who it found in the way. W6's state is
// made by the first look that finds the lock held: an uncontended lock
// needs none.
func (ws *waitState) looked(blk *LockedError) {
	if ws.net == nil && ws.netOK && blk != nil {
		ws.net = &netWait{since: time.Now()}
	}
	if n := ws.net; n != nil {
		n.seen, n.lookedAt, n.woke = blk, time.Now(), false
		n.longAhead = false
		if blk != nil && !ws.waitedLong() {
			n.heldAt = ws.l.heldAt()
			n.longAhead = ws.longWaiterMarked(false)
		}
	}
}

// wokeUp notes a wake-up: the next try is a whole look.
func (ws *waitState) wokeUp() {
	if n := ws.net; n != nil {
		n.woke = true
	}
}

// takeProbed reports whether the last try was a probe (which found
// nothing new to report or announce), and clears it.
func (ws *waitState) takeProbed() bool {
	n := ws.net
	if n == nil || !n.probed {
		return false
	}
	n.probed = false
	return true
}
