package lockcore

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// waitState is what one acquisition remembers between tries.
type waitState struct {
	l *Lock
	sightings
	delay   time.Duration
	gdelay  time.Duration // the same, waiting for a breaker guard
	quick   int           // tries in a row that were not blocked
	try     bool          // TryLock: cleanups are waited for briefly (tryCleanup)
	notLock time.Time     // when a try first found P not a lock's, on a network filesystem

	// Wake-ups other than polling (notify_linux.go), set up once a wait
	// begins, undone by stop.
	watched bool         // changes at the path wake this waiter
	exits   map[int]bool // local holders whose exit wakes this waiter
	stops   []func()

	netOK bool     // W6 applies: a lock file on a network filesystem (Lock only)
	net   *netWait // its state, once blocked
}

func (l *Lock) newWaitState() *waitState { return &waitState{l: l} }

// sightings are the records a wait has watched, for leases and grace
// periods: how long each has stood unchanged.
type sightings struct {
	holder    stale.Observation             // the record at the lock path
	readerObs map[string]*stale.Observation // a shared group's reader records
	last      stale.Observation             // an unreadable last record
	guardObs  stale.Observation             // the breaker guard's record
	orphanObs stale.Observation             // the guard's record, when its holder lives here
}

// clone is a copy of s that shares nothing with it.
func (s sightings) clone() sightings {
	c := s
	if s.readerObs != nil {
		c.readerObs = make(map[string]*stale.Observation, len(s.readerObs))
		for k, ob := range s.readerObs {
			o := *ob
			c.readerObs[k] = &o
		}
	}
	return c
}

// follow arranges for the waiter to be woken by changes at the lock path
// (W1) and by the exit of the live local holders named in blk (a wake-up only
// makes the waiter look again, so a fake process table does no harm). It reports
// whether the path's watch was only now set up: then the caller must try
// again before it waits, since a change just before the watch is missed.
func (ws *waitState) follow(blk *LockedError) (retry bool) {
	l := ws.l
	if !ws.watched {
		ws.watched = true
		ws.stops = append(ws.stops, watchPath(l.store.Path(), l.wake))
		retry = true
	}
	if blk == nil {
		return retry
	}
	for _, o := range blk.Owners {
		if stale.Of(o) != l.cfg.Checker.Local || ws.exits[o.PID] || len(ws.exits) >= 8 {
			continue
		}
		if ws.exits == nil {
			ws.exits = map[int]bool{}
		}
		ws.exits[o.PID] = true
		still := func() bool { return l.cfg.Checker.Judge(o).Verdict == stale.Alive }
		ws.stops = append(ws.stops, watchExit(o.PID, still, l.wake))
	}
	return retry
}

// stop undoes follow. P.want stays: other waiters may have announced
// themselves there too (yield removes it once it is found stale).
func (ws *waitState) stop() {
	for _, f := range ws.stops {
		f()
	}
	ws.stops, ws.exits, ws.watched = nil, nil, false
}

// pause waits before the next try: until woken by a release in this
// process, or a backoff with jitter passes, or ctx is done.
func (ws *waitState) pause(ctx context.Context, woken <-chan struct{}, retryNow bool) error {
	cfg := &ws.l.cfg
	if retryNow {
		ws.quick++
		if ws.quick < 3 {
			return ctx.Err()
		}
	}
	ws.quick = 0
	if !retryNow && ws.net != nil {
		if line := ws.hostLineFor(); line != nil && !line.head {
			return ws.awaitTurn(ctx, line, woken)
		}
	}
	hi := cfg.PollMax
	if ws.net != nil {
		hi = min(hi, probeMax)
	}
	if ws.delay == 0 {
		ws.delay = min(cfg.PollMin, hi)
	} else {
		ws.delay = min(ws.delay*2, hi)
	}
	d := ws.delay/2 + rand.N(ws.delay/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-woken:
		ws.delay = 0
		ws.wokeUp()
		return nil
	case <-t.C:
		return nil
	}
}

// pauseGuard waits a little while a breaker guard is held (W3). A guard is held
// only for the few operations of a break or a handoff, so it is polled
// quickly whatever the poll settings (which may be long, for a holder).
func (ws *waitState) pauseGuard(ctx context.Context) error {
	cfg := &ws.l.cfg
	hi := min(cfg.PollMax, 10*time.Millisecond)
	ws.gdelay = min(max(ws.gdelay*2, min(cfg.PollMin, time.Millisecond)), hi)
	t := time.NewTimer(ws.gdelay/2 + rand.N(ws.gdelay/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readerOb is what this wait observed of the reader record n.
func (s *waitState) readerOb(n string) *stale.Observation { return observationOf(&s.readerObs, n) }

// observationOf is the observation kept in *m for the record n, made (and
// the map) if there is none yet.
func observationOf(m *map[string]*stale.Observation, n string) *stale.Observation {
	if *m == nil {
		*m = map[string]*stale.Observation{}
	}
	ob := (*m)[n]
	if ob == nil {
		ob = new(stale.Observation)
		(*m)[n] = ob
	}
	return ob
}
