package locktest

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// chaosT is what chaosCheck reports to: a testing.TB, or a recorder in
// the checker's own tests.
type chaosT interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// chaosHold is one hold of a chaos log: its begin line, its end line (nil
// if its worker was killed while holding) and when it stopped (the end
// line's T1, or the kill).
type chaosHold struct {
	begin chaosRec
	end   *chaosRec
	stop  int64
}

func (h *chaosHold) String() string {
	kind := "exclusive"
	if h.begin.shared {
		kind = "shared"
	}
	return fmt.Sprintf("%s hold of token %d by %s (log line %d)", kind, h.begin.tok, h.begin.id(), h.begin.line)
}

// chaosChecker is one run of chaosCheck.
type chaosChecker struct {
	t        chaosT
	lines    []string
	killed   map[string]time.Time // worker id -> when it was killed
	problems int

	holds   []*chaosHold          // in log order, then (after parse) by start
	open    map[string]*chaosHold // worker id -> its open hold
	live    []*chaosHold          // holds open in log order, killed ones until the next begin
	breaks  []chaosRec
	broken  map[string]int // victim id -> breaks
	unparse int            // breaks of empty records
}

func (c *chaosChecker) complain(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf(format, args...)
	if c.problems++; c.problems == 20 {
		c.t.Fatalf("too many problems; giving up")
	}
}

// chaosCheck checks the log of a chaos run — of RoleChaos workers (every
// hold exclusive) or of RoleChaosRW workers (holds shared or exclusive) —
// and logs its numbers. Shared holds may overlap each other; an exclusive
// hold overlaps nothing, by clock and by log order. Every exclusive hold
// increments the counter exactly once (a killed one at most once); shared
// holds see a whole counter that does not change under them, with the
// value the exclusive holds before them left. Tokens increase from each
// exclusive hold to every hold after it, and from each completed hold to
// every exclusive hold after it. Only killed workers' locks are broken,
// after their kill, at most once, and each exclusive hold ended by a kill
// is broken; after every kill a hold completes. It reports whether it
// found a problem.
func chaosCheck(t chaosT, lines []string, events []*chaosEvent, killed map[string]time.Time,
	counter uint64, hostA, hostB string, total, killing time.Duration) bool {
	t.Helper()
	c := &chaosChecker{t: t, lines: lines, killed: killed, open: map[string]*chaosHold{}, broken: map[string]int{}}
	for i, s := range lines {
		r, err := parseChaosLine(i+1, s)
		if err != nil {
			c.complain("%v", err)
			continue
		}
		c.line(r)
	}
	nKilledShared, nKilledExcl := c.closeOpen()
	slices.SortStableFunc(c.holds, func(a, b *chaosHold) int {
		switch {
		case a.begin.t0 < b.begin.t0:
			return -1
		case a.begin.t0 > b.begin.t0:
			return 1
		}
		return 0
	})
	maxReaders, crossReaders := c.exclusion()
	c.tokens()
	nShared, nExcl := c.counter(counter, nKilledExcl)
	c.kills(events, hostA)

	perHost := map[string]int{}
	crossings := 0
	var prev *chaosHold
	for _, h := range c.holds {
		if h.end != nil {
			perHost[chaosLetter(h.begin.host, hostA)]++
		}
		if prev != nil && !h.begin.shared && h.begin.host != prev.begin.host {
			crossings++
		}
		if !h.begin.shared {
			prev = h
		}
	}
	t.Logf("chaos: %v (%v of kills): %d holds logged; completed %d exclusive, %d shared (host A %d, host B %d; %.0f/s); killed while holding: %d exclusive, %d shared; counter %d",
		total.Round(time.Millisecond), killing.Round(time.Millisecond), len(c.holds), nExcl, nShared, perHost["A"], perHost["B"],
		float64(nExcl+nShared)/total.Seconds(), nKilledExcl, nKilledShared, counter)
	t.Logf("chaos: exclusive holds passed between the hosts %d times; up to %d shared holds at once; %d shared holds overlapped one on the other host; %d locks broken (%d empty records)",
		crossings, maxReaders, crossReaders, len(c.broken), c.unparse)
	return c.problems > 0
}

// line takes one parsed log line, in log order.
func (c *chaosChecker) line(r chaosRec) {
	c.t.Helper()
	switch r.kind {
	case "begin":
		if h := c.open[r.id()]; h != nil {
			c.complain("log line %d: %s begins a hold while its %s is open: that hold never ended, and its worker was never killed",
				r.line, r.id(), h)
			h.stop = h.begin.t0
			c.live = slices.DeleteFunc(c.live, func(o *chaosHold) bool { return o == h })
		}
		// A killed worker's hold ends with its kill: by the next begin (the
		// clock says whether the kill came first).
		c.live = slices.DeleteFunc(c.live, func(h *chaosHold) bool { _, k := c.killed[h.begin.id()]; return k })
		h := &chaosHold{begin: r}
		c.logOrder(r, h)
		c.holds = append(c.holds, h)
		c.open[r.id()] = h
		c.live = append(c.live, h)
	case "end":
		h := c.open[r.id()]
		if h == nil || h.begin.tok != r.tok || h.begin.t0 != r.t0 || h.begin.shared != r.shared {
			c.complain("log line %d: %q ends no open hold of its worker", r.line, c.lines[r.line-1])
			return
		}
		delete(c.open, r.id())
		c.live = slices.DeleteFunc(c.live, func(o *chaosHold) bool { return o == h })
		c.logOrder(r, h)
		h.end, h.stop = &r, r.t1
		switch {
		case r.t1 < r.t0:
			c.complain("log line %d: %q ends before it began", r.line, c.lines[r.line-1])
		case r.shared && r.v != h.begin.v:
			c.complain("log line %d: %s read counter %d, then %d: it changed under a shared hold", r.line, h, h.begin.v, r.v)
		case !r.shared && r.v != h.begin.v+1:
			c.complain("log line %d: %s read %d and wrote %d", r.line, h, h.begin.v, r.v)
		}
	case "break":
		c.breakLine(r)
	default:
		c.complain("log line %d: %s", r.line, r.reason)
	}
}

// logOrder checks that the begin or end line r of hold h is not logged
// inside another hold that excludes it: lines are appended while holding,
// so such a line proves two holders at once (even where the clock
// readings, taken a little further inside the holds, do not overlap).
func (c *chaosChecker) logOrder(r chaosRec, h *chaosHold) {
	c.t.Helper()
	for _, o := range c.live {
		if _, k := c.killed[o.begin.id()]; o == h || k || (o.begin.shared && h.begin.shared) {
			continue
		}
		c.complain("log line %d: %s logged its %s inside %s: an exclusive hold overlaps another", r.line, h, r.kind, o)
	}
}

// breakLine checks a break: of a killed worker's lock, after the kill,
// and not while an exclusive hold of another is open.
func (c *chaosChecker) breakLine(r chaosRec) {
	c.t.Helper()
	c.breaks = append(c.breaks, r)
	if r.vhost == "-" {
		c.unparse++ // an empty record: a worker killed between create and write
		return
	}
	at, ok := c.killed[r.vid()]
	switch {
	case !ok:
		c.complain("log line %d: %s broke the lock of %s, which was never killed (%s): a live holder lost its lock",
			r.line, r.id(), r.vid(), r.reason)
	case r.t0 <= at.UnixNano():
		c.complain("log line %d: %s broke the lock of %s before it was killed", r.line, r.id(), r.vid())
	}
	for _, o := range c.live {
		if !o.begin.shared && o.begin.id() != r.vid() {
			c.complain("log line %d: %s broke the lock of %s while %s held it", r.line, r.id(), r.vid(), o)
		}
	}
	c.broken[r.vid()]++
}

// closeOpen ends the holds left open: each must be a killed worker's, and
// an exclusive one's lock must have been broken. It returns how many of
// each mode were killed while holding.
func (c *chaosChecker) closeOpen() (shared, excl int) {
	c.t.Helper()
	for id, h := range c.open {
		at, ok := c.killed[id]
		if !ok {
			c.complain("%s never ended, and its worker was never killed", h)
			h.stop = h.begin.t0
			continue
		}
		h.stop = at.UnixNano()
		if h.begin.shared {
			shared++
			continue
		}
		excl++
		if c.broken[id] == 0 {
			c.complain("%s ended by a kill, but no one logged breaking its lock", h)
		}
	}
	for id, n := range c.broken {
		if n > 1 {
			c.complain("the lock of %s was broken %d times", id, n)
		}
	}
	return shared, excl
}

// exclusion checks, by clock, that an exclusive hold overlaps no other
// hold. Intervals are measured inside the holds (after Lock returned,
// before Unlock), so an overlap of them is an overlap of the holds; a
// killed hold lasts until its kill. It returns the most shared holds seen
// at once, and how many shared holds overlapped one on the other host.
func (c *chaosChecker) exclusion() (maxReaders, crossReaders int) {
	c.t.Helper()
	for i, a := range c.holds {
		readers, cross := 1, false
		for _, b := range c.holds[i+1:] {
			if b.begin.t0 >= a.stop {
				break
			}
			if !a.begin.shared || !b.begin.shared {
				how := "an exclusive hold shared the lock"
				if a.end == nil {
					how = "it began before the holder of " + a.String() + " was killed: two holders"
				}
				c.complain("%s [%d, %d] overlaps %s [%d, %d]: %s", a, a.begin.t0, a.stop, b, b.begin.t0, b.stop, how)
				continue
			}
			readers++
			cross = cross || a.begin.host != b.begin.host
		}
		if a.begin.shared {
			maxReaders = max(maxReaders, readers)
			if cross {
				crossReaders++
			}
		}
	}
	return maxReaders, crossReaders
}

// tokens checks that a hold's token is above that of every exclusive hold
// that stopped before it began, and an exclusive hold's above every
// completed hold's before it.
func (c *chaosChecker) tokens() {
	c.t.Helper()
	for i, b := range c.holds {
		for _, a := range c.holds[:i] {
			if a.stop >= b.begin.t0 || b.begin.tok > a.begin.tok {
				continue
			}
			if !a.begin.shared || (a.end != nil && !b.begin.shared) {
				c.complain("%s has token %d, not above that of %s (%d), which stopped before it began: tokens must increase",
					b, b.begin.tok, a, a.begin.tok)
			}
		}
	}
}

// counter checks the counter each hold read, in order of the holds (those
// that read or write it are serialised, as exclusion checked), and its
// final value. It returns the completed holds of each mode.
func (c *chaosChecker) counter(counter uint64, killedExcl int) (nShared, nExcl int) {
	c.t.Helper()
	var lo, hi uint64
	for _, h := range c.holds {
		v := h.begin.v
		if v < lo || v > hi {
			c.complain("%s read counter %d, want %d..%d: an update was lost or repeated", h, v, lo, hi)
		}
		switch {
		case h.begin.shared:
			if h.end != nil {
				nShared++
			}
			lo, hi = v, v // what the killed writer before it left
		case h.end != nil:
			nExcl++
			lo, hi = h.end.v, h.end.v
		default:
			lo, hi = v, v+1 // killed before or after its rename
		}
	}
	if counter < lo || counter > hi {
		c.complain("counter is %d, want %d..%d (%d exclusive holds completed, %d killed while holding)",
			counter, lo, hi, nExcl, killedExcl)
	}
	return nShared, nExcl
}

func chaosLetter(host, hostA string) string {
	if host == hostA {
		return "A"
	}
	return "B"
}

// kills checks that a hold completed after each kill, and logs how long
// the next acquisition took, and the reclaim of a killed holder's lock.
func (c *chaosChecker) kills(events []*chaosEvent, hostA string) {
	c.t.Helper()
	var (
		anyKill                         chaosStat
		sameA, sameB, crossAB, crossBA  chaosStat // victim held the lock; "AB": victim on A, taken by B
		victimsHeld, processes, crashes int
	)
	for _, ev := range events {
		processes += len(ev.victims)
		if ev.crash {
			crashes++
		}
		at := ev.at.UnixNano()
		var next *chaosHold
		progress := false
		for _, h := range c.holds {
			if h.begin.t0 > at {
				next = cmp.Or(next, h)
				if progress = h.end != nil; progress {
					break
				}
			}
		}
		if !progress {
			c.complain("no completed hold after %s", ev)
			continue
		}
		d := time.Duration(next.begin.t0 - at)
		anyKill = append(anyKill, d)
		// Did a victim die holding the lock? Then someone broke it: on the
		// victim's host by the PID check, on the other by the lease.
		var brk *chaosRec
		for _, v := range ev.victims {
			for i := range c.breaks {
				if c.breaks[i].vid() == v.id() {
					brk = &c.breaks[i]
				}
			}
		}
		if brk == nil {
			continue
		}
		victimsHeld++
		switch from, by := chaosLetter(brk.vhost, hostA), chaosLetter(brk.host, hostA); {
		case from == "A" && by == "A":
			sameA = append(sameA, d)
		case from == "B" && by == "B":
			sameB = append(sameB, d)
		case from == "A":
			crossAB = append(crossAB, d)
			c.t.Logf("cross-host reclaim after %s: %v to the next hold; %s", ev, d.Round(time.Millisecond), c.lines[brk.line-1])
		default:
			crossBA = append(crossBA, d)
			c.t.Logf("cross-host reclaim after %s: %v to the next hold; %s", ev, d.Round(time.Millisecond), c.lines[brk.line-1])
		}
	}
	c.t.Logf("chaos: %d kill events (%d host crashes), %d processes killed; %d victims held the lock", len(events), crashes, processes, victimsHeld)
	c.t.Logf("chaos: next acquisition after any kill: %v", anyKill)
	c.t.Logf("chaos: reclaim of a killed holder's lock, same host (PID check): victim on A: %v; victim on B: %v", sameA, sameB)
	c.t.Logf("chaos: reclaim of a killed holder's lock, across hosts (lease %v): A's by B: %v; B's by A: %v", chaosLease, crossAB, crossBA)
}
