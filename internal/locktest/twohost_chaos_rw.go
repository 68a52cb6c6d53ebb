package locktest

import (
	"fmt"
	"slices"
	"time"
)

// chaosHold is one hold of a chaos-rw log: its begin line, its end line
// (nil if its worker was killed while holding) and when it stopped (the
// end line's T1, or the kill).
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

// chaosCheckRW checks the log of a chaos run of RoleChaosRW workers, where
// holds are shared or exclusive, and logs its numbers. Shared holds may
// overlap each other; an exclusive hold overlaps nothing. Every exclusive
// hold increments the counter exactly once (a killed one at most once);
// shared holds see a whole counter that does not change under them, with
// the value the exclusive holds before them left. Tokens increase from
// each exclusive hold to every hold after it, and from each completed
// hold to every exclusive hold after it. It reports whether it found a
// problem.
func chaosCheckRW(t chaosT, lines []string, events []*chaosEvent, killed map[string]time.Time,
	counter uint64, hostA, hostB string, total, killing time.Duration) bool {
	t.Helper()
	problems := 0
	complain := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if problems++; problems == 20 {
			t.Fatalf("too many problems; giving up")
		}
	}
	var (
		holds   []*chaosHold
		open    = map[string]*chaosHold{} // worker id -> its open hold
		broken  = map[string]int{}
		unparse int
	)
	for i, s := range lines {
		r, err := parseChaosLine(i+1, s)
		if err != nil {
			complain("%v", err)
			continue
		}
		switch r.kind {
		case "begin":
			if h := open[r.id()]; h != nil {
				complain("log line %d: %s begins a hold while its %s is open", r.line, r.id(), h)
			}
			h := &chaosHold{begin: r}
			holds = append(holds, h)
			open[r.id()] = h
		case "end":
			h := open[r.id()]
			if h == nil || h.begin.tok != r.tok || h.begin.t0 != r.t0 || h.begin.shared != r.shared {
				complain("log line %d: %q ends no open hold of its worker", r.line, s)
				continue
			}
			delete(open, r.id())
			h.end, h.stop = &r, r.t1
			switch {
			case r.t1 < r.t0:
				complain("log line %d: %q ends before it began", r.line, s)
			case r.shared && r.v != h.begin.v:
				complain("log line %d: %s read counter %d, then %d: it changed under a shared hold", r.line, h, h.begin.v, r.v)
			case !r.shared && r.v != h.begin.v+1:
				complain("log line %d: %s read %d and wrote %d", r.line, h, h.begin.v, r.v)
			}
		case "break":
			if r.vhost == "-" {
				unparse++
				continue
			}
			at, ok := killed[r.vid()]
			switch {
			case !ok:
				complain("log line %d: %s broke the lock of %s, which was never killed (%s): a live holder lost its lock",
					r.line, r.id(), r.vid(), r.reason)
			case r.t0 <= at.UnixNano():
				complain("log line %d: %s broke the lock of %s before it was killed", r.line, r.id(), r.vid())
			}
			broken[r.vid()]++
		default:
			complain("log line %d: %s", r.line, r.reason)
		}
	}
	var killedShared, killedExcl []*chaosHold
	for id, h := range open {
		at, ok := killed[id]
		if !ok {
			complain("%s never ended, and its worker was never killed", h)
			h.stop = h.begin.t0
			continue
		}
		h.stop = at.UnixNano()
		if h.begin.shared {
			killedShared = append(killedShared, h)
		} else {
			killedExcl = append(killedExcl, h)
			if broken[id] == 0 {
				complain("%s ended by a kill, but no one logged breaking its lock", h)
			}
		}
	}
	for id, n := range broken {
		if n > 1 {
			complain("the lock of %s was broken %d times", id, n)
		}
	}
	slices.SortStableFunc(holds, func(a, b *chaosHold) int {
		switch {
		case a.begin.t0 < b.begin.t0:
			return -1
		case a.begin.t0 > b.begin.t0:
			return 1
		}
		return 0
	})

	// Exclusion: an exclusive hold overlaps no other hold. Intervals are
	// measured inside the holds (after Lock returned, before Unlock), so
	// an overlap of them is an overlap of the holds.
	maxReaders, crossReaders := 0, 0
	for i, a := range holds {
		readers, cross := 1, false
		for _, b := range holds[i+1:] {
			if b.begin.t0 >= a.stop {
				break
			}
			if !a.begin.shared || !b.begin.shared {
				complain("%s [%d, %d] overlaps %s [%d, %d]: an exclusive hold shared the lock",
					a, a.begin.t0, a.stop, b, b.begin.t0, b.stop)
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

	// Tokens.
	for i, b := range holds {
		for _, a := range holds[:i] {
			if a.stop >= b.begin.t0 || b.begin.tok > a.begin.tok {
				continue
			}
			if !a.begin.shared || (a.end != nil && !b.begin.shared) {
				complain("%s has token %d, not above that of %s (%d), which stopped before it began",
					b, b.begin.tok, a, a.begin.tok)
			}
		}
	}

	// The counter, in order of the holds (those that read or write it are
	// serialised by the exclusion checked above).
	var lo, hi uint64
	nShared, nExcl := 0, 0
	for _, h := range holds {
		v := h.begin.v
		if v < lo || v > hi {
			complain("%s read counter %d, want %d..%d: an update was lost or repeated", h, v, lo, hi)
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
		complain("counter is %d, want %d..%d (%d exclusive holds completed, %d killed while holding)",
			counter, lo, hi, nExcl, len(killedExcl))
	}

	// Progress after each kill.
	processes, crashes := 0, 0
	var next chaosStat
	for _, ev := range events {
		processes += len(ev.victims)
		if ev.crash {
			crashes++
		}
		at := ev.at.UnixNano()
		var first *chaosHold
		progress := false
		for _, h := range holds {
			if h.begin.t0 > at {
				if first == nil {
					first = h
				}
				if h.end != nil {
					progress = true
					break
				}
			}
		}
		if !progress {
			complain("no completed hold after %s", ev)
			continue
		}
		next = append(next, time.Duration(first.begin.t0-at))
	}
	perHost := map[string]int{}
	for _, h := range holds {
		if h.end != nil {
			if h.begin.host == hostA {
				perHost["A"]++
			} else {
				perHost["B"]++
			}
		}
	}
	t.Logf("chaos-rw: %v (%v of kills): %d holds logged; completed %d shared, %d exclusive (host A %d, host B %d); killed while holding: %d shared, %d exclusive; counter %d",
		total.Round(time.Millisecond), killing.Round(time.Millisecond), len(holds), nShared, nExcl, perHost["A"], perHost["B"],
		len(killedShared), len(killedExcl), counter)
	t.Logf("chaos-rw: up to %d shared holds at once; %d shared holds overlapped one on the other host; %d kill events (%d host crashes), %d processes killed; %d locks broken (%d empty records)",
		maxReaders, crossReaders, len(events), crashes, processes, len(broken), unparse)
	t.Logf("chaos-rw: next acquisition after any kill: %v", next)
	return problems > 0
}
