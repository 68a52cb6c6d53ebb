package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dotlock/dotlock/bench"
)

func benchUncontended() []string { return bench.Uncontended }

func peersAbout() map[string]string {
	m := map[string]string{}
	for n, p := range bench.Peers {
		m[n] = p.About
	}
	return m
}

func recordSize() int { return len(bench.Record) }

// Target is one line of "the speed to reach": a cell per filesystem.
type Target struct {
	Key   string
	Name  string
	Cells []string
	Miss  []string // per filesystem, why-section keys of what missed
}

const (
	okMark   = "✅"
	missMark = "❌"
	infoMark = "ℹ️"
)

func mark(ok bool) string {
	if ok {
		return okMark
	}
	return missMark
}

// evaluate checks each target on each filesystem.
func evaluate(res *Results) []Target {
	var ts []Target
	add := func(key, name string, cell func(f *FSResults) (string, bool, bool)) {
		t := Target{Key: key, Name: name}
		for _, f := range res.FS {
			s, ok, known := cell(f)
			switch {
			case !known && strings.HasPrefix(s, "n/a"):
			case !known:
				s = "not measured"
			case ok:
				s = okMark + " " + s
			default:
				s = missMark + " " + s
				t.Miss = append(t.Miss, f.Label())
			}
			t.Cells = append(t.Cells, s)
		}
		ts = append(ts, t)
	}
	// 1. Uncontended.
	add("unc-file", "uncontended lockfile within 1.5× the O_EXCL floor", func(f *FSResults) (string, bool, bool) {
		a, fl := nsOf(f, "dotlock-lockfile"), nsOf(f, "raw-excl")
		if a == 0 || fl == 0 {
			return "", false, false
		}
		r := a / fl
		return fmt.Sprintf("%.2f× (%.1f vs %.1f µs)%s", r, a/1e3, fl/1e3, missBy(r, 1.5)), r <= 1.5, true
	})
	add("unc-dir", "uncontended lockdir within 1.5× the mkdir floor", func(f *FSResults) (string, bool, bool) {
		a, fl := nsOf(f, "dotlock-lockdir"), nsOf(f, "raw-mkdir")
		if a == 0 || fl == 0 {
			return "", false, false
		}
		r := a / fl
		return fmt.Sprintf("%.2f× (%.1f vs %.1f µs)%s", r, a/1e3, fl/1e3, missBy(r, 1.5)), r <= 1.5, true
	})
	add("unc-nightly", "uncontended: never slower than nightlyone/lockfile", func(f *FSResults) (string, bool, bool) {
		if f.Excluded["nightlyone"] != "" {
			return "n/a: nightlyone/lockfile does not work here (section 1)", false, false
		}
		n := nsOf(f, "nightlyone")
		a, d := nsOf(f, "dotlock-lockfile"), nsOf(f, "dotlock-lockdir")
		if n == 0 || a == 0 || d == 0 {
			return "", false, false
		}
		return fmt.Sprintf("lockfile %.2f×, lockdir %.2f× nightlyone's time", a/n, d/n), a <= n && d <= n, true
	})
	// 2. Contended at 4.
	both := func(f *FSResults, v func(r *ContendResult) float64, ok func(float64) bool, format string) (string, bool, bool) {
		lf, ld := findContend(f, 4, "dotlock-lockfile", ""), findContend(f, 4, "dotlock-lockdir", "")
		if lf == nil || ld == nil {
			return "", false, false
		}
		a, b := v(lf), v(ld)
		return fmt.Sprintf("lockfile "+format+", lockdir "+format, a, b), ok(a) && ok(b), true
	}
	add("cont-rounds", "4 processes: rounds/s at least ½ of gofrs/flock's", func(f *FSResults) (string, bool, bool) {
		g := findContend(f, 4, "gofrs-flock", "")
		if g == nil || g.RoundsPerS == 0 {
			return "", false, false
		}
		if g.Lost != "" {
			return "n/a: gofrs/flock does not exclude across the mounts", false, false
		}
		return both(f, func(r *ContendResult) float64 { return r.RoundsPerS / g.RoundsPerS }, func(x float64) bool { return x >= 0.5 }, "%.2f×")
	})
	add("cont-handoffs", "4 processes: handoffs/s at least ½ of gofrs/flock's", func(f *FSResults) (string, bool, bool) {
		g := findContend(f, 4, "gofrs-flock", "")
		if g == nil || g.HandoffsPS == 0 {
			return "", false, false
		}
		if g.Lost != "" {
			return "n/a: gofrs/flock does not exclude across the mounts", false, false
		}
		return both(f, func(r *ContendResult) float64 { return r.HandoffsPS / g.HandoffsPS }, func(x float64) bool { return x >= 0.5 }, "%.2f×")
	})
	add("cont-fair", "4 processes: fairness (fewest/most) at least 0.8", func(f *FSResults) (string, bool, bool) {
		return both(f, func(r *ContendResult) float64 { return r.Fairness }, func(x float64) bool { return x >= 0.8 }, "%.2f")
	})
	add("cont-polling", "4 processes: more handoffs/s than every polling peer at its best", func(f *FSResults) (string, bool, bool) {
		best := bestPolling(f)
		lf, ld := findContend(f, 4, "dotlock-lockfile", ""), findContend(f, 4, "dotlock-lockdir", "")
		if best == nil || lf == nil || ld == nil {
			return "", false, false
		}
		s := fmt.Sprintf("lockfile %.0f, lockdir %.0f vs %.0f (%s)", lf.HandoffsPS, ld.HandoffsPS, best.HandoffsPS, best.Impl.Label())
		return s, lf.HandoffsPS > best.HandoffsPS && ld.HandoffsPS > best.HandoffsPS, true
	})
	// 3. Crash recovery.
	add("crash-local", "same-host crash recovery: median under 5 ms", func(f *FSResults) (string, bool, bool) {
		var parts []string
		ok, known := true, false
		for _, c := range f.Crash {
			if c.Remote || c.Impl.Group != "dotlock" || c.Err != nil {
				continue
			}
			known = true
			if len(c.Times) == 0 {
				parts = append(parts, short(c.Impl.Name)+" never")
				ok = false
				continue
			}
			m := c.Median()
			ok = ok && m < 5*time.Millisecond
			parts = append(parts, fmt.Sprintf("%s %s%s", short(c.Impl.Name), dur(m), missBy(float64(m), float64(5*time.Millisecond))))
		}
		return strings.Join(parts, ", "), ok, known
	})
	add("crash-remote", "other-host crash recovery within StaleAfter + one heartbeat (1 s + 250 ms)", func(f *FSResults) (string, bool, bool) {
		var parts []string
		ok, known := true, false
		for _, c := range f.Crash {
			if !c.Remote || c.Err != nil {
				continue
			}
			known = true
			if len(c.Times) == 0 {
				parts = append(parts, short(c.Impl.Name)+" never")
				ok = false
				continue
			}
			mx := pct(c.Times, 100)
			ok = ok && mx <= 1250*time.Millisecond
			parts = append(parts, fmt.Sprintf("%s median %s, max %s", short(c.Impl.Name), dur(c.Median()), dur(mx)))
		}
		return strings.Join(parts, "; "), ok, known
	})
	// Allocations: stated.
	t := Target{Key: "allocs", Name: "allocations per uncontended lock+unlock (stated; keep small)"}
	for _, f := range res.FS {
		var parts []string
		for _, u := range f.Uncontended {
			if strings.HasPrefix(u.Name, "dotlock-") && u.Err == nil && u.Allocs >= 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f (%.1f KB)", short(u.Name), u.Allocs, u.Bytes/1024))
			}
		}
		if len(parts) == 0 {
			t.Cells = append(t.Cells, "not measured")
		} else {
			t.Cells = append(t.Cells, infoMark+" "+strings.Join(parts, ", "))
		}
	}
	ts = append(ts, t)
	// 4. Scale.
	add("scale", "scale: cost per operation flat (last range within 1.5× of the first)", func(f *FSResults) (string, bool, bool) {
		var parts []string
		ok, known := true, false
		for _, s := range f.Scale {
			if !strings.HasPrefix(s.Name, "dotlock-") || s.Err != nil {
				continue
			}
			known = true
			l, u := s.Ratio(s.Lock), s.Ratio(s.Unlock)
			ok = ok && l <= 1.5 && u <= 1.5
			what := strings.Fields(s.What)[0] + " locks"
			if strings.Contains(s.What, "readers") {
				what = strings.Fields(s.What)[0] + " readers"
			}
			fl := ""
			if fs := floorScale(f, s.Name); fs != nil {
				fl = fmt.Sprintf(" (floor %.2f×, %.2f×)", fs.Ratio(fs.Lock), fs.Ratio(fs.Unlock))
			}
			parts = append(parts, fmt.Sprintf("%s %s: lock %.2f×, unlock %.2f×%s", short(s.Name), what, l, u, fl))
		}
		return strings.Join(parts, "; "), ok, known
	})
	return ts
}

func short(name string) string {
	return strings.TrimPrefix(strings.TrimPrefix(name, "dotlock-"), "dotlock ")
}

// missBy says how far a value is over its limit.
func missBy(v, limit float64) string {
	if v <= limit {
		return ""
	}
	return fmt.Sprintf(", %.1f× over", v/limit)
}

// bestPolling is the polling peer (not dotlock) with the most handoffs/s at
// 4 processes, over all its settings.
func bestPolling(f *FSResults) *ContendResult {
	var best *ContendResult
	for i, r := range f.Contended {
		if r.Procs != 4 || !r.Impl.Polling || r.Impl.Group == "dotlock" || r.Impl.Group == "floor" || r.Err != nil || r.Lost != "" {
			continue
		}
		if best == nil || r.HandoffsPS > best.HandoffsPS {
			best = &f.Contended[i]
		}
	}
	return best
}

// analysis explains the misses, one section per cause. The mechanisms
// named come from reading internal/lockcore (lock.go, rw.go, store.go) and
// from strace -c and pprof of the uncontended benchmark (bench/README.md
// says how); the numbers come from this run.
func analysis(res *Results, ts []Target) string {
	groups := []struct {
		title string
		keys  []string
		why   func() string
	}{
		{"Uncontended cost", []string{"unc-file", "unc-dir", "unc-nightly"}, func() string { return uncontendedWhy(res) }},
		{"Contention: handoffs, fairness, throughput", []string{"cont-rounds", "cont-handoffs", "cont-fair", "cont-polling"}, func() string { return contendWhy(res) }},
		{"Same-host crash recovery", []string{"crash-local"}, func() string { return crashWhy(res) }},
		{"Other-host crash recovery", []string{"crash-remote"}, func() string {
			return "The lease path takes StaleAfter after the holder's last heartbeat plus up to one poll: see the rows of section 3."
		}},
		{"Scale", []string{"scale"}, func() string { return scaleWhy(res) }},
	}
	var b strings.Builder
	for _, g := range groups {
		var missed []string
		for _, t := range ts {
			if len(t.Miss) > 0 && slices.Contains(g.keys, t.Key) {
				missed = append(missed, fmt.Sprintf("- %s — missed on %s", t.Name, strings.Join(t.Miss, ", ")))
			}
		}
		if len(missed) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %s\n\n%s\n\n%s\n\n", g.title, strings.Join(missed, "\n"), g.why())
	}
	if b.Len() == 0 {
		return "Every target was met in this run.\n"
	}
	return b.String()
}

func uncontendedWhy(res *Results) string {
	return syncNote(res) + `**lockfile.** The floor is one create, one write, one close and one unlink. dotlock's lockfile Lock + Unlock makes about four times as many system calls (strace -c of BenchmarkUncontended on tmpfs: about 43 against 10): A1 the create; A3 reading P.last for the token; A4 the write; A5 an lstat of P.break; A6 reading P back; and, to release, R1 reading P again, removing P.last and renaming P onto it (os.Rename adds an lstat). Each record read is open + fstat + four read calls (io.ReadAll grows its buffer from 512 bytes, and a record is 1024) + close: the three reads are more than half of the calls. Each Lock also starts a heartbeat goroutine with a ticker, which Unlock stops and waits for: about 2.4 futex and 2.8 nanosleep calls per lock+unlock, and scheduler round trips. On ext4 the floor itself costs tens of µs in the journal, so the same overhead weighs less there than on tmpfs. nightlyone/lockfile makes fewer calls (a temporary pid file, a link, two lstats, an unlink; to release, read the pid and remove) and starts no goroutine.

**lockdir** pays everything lockfile does and more: its create is mkdir + an os.Root on the new directory + an exclusive create of owner inside it; every read of P is an lstat of the directory before the record read; and because a lock directory supports readers and a queue, each Lock and Unlock also lstats P.queue (about 53 system calls per lock+unlock against the mkdir floor's 13.5). RWLock's Lock goes the same way; RLock joins under the guard P.break (creating, writing and removing it) and writes two records (the anchor's token and its own).

` + fileFixes
}

const fileFixes = `**Suggested library changes**, in order of payoff: (1) read a record with one read into a 4097-byte buffer (reused, or on the stack) instead of io.ReadAll through a LimitReader — three fewer read calls and about six fewer allocations per read; (2) on local filesystems (where networkFS is false) prove A6 and R1 by identity — fstat of the entry still open against lstat of P, which is sound locally because the open descriptor pins the inode — and keep the byte-for-byte re-read for network filesystems, whose inode numbers differ per mount; (3) heartbeat with time.AfterFunc (or one heartbeat goroutine per process for all holds) instead of a goroutine and ticker per hold that Unlock must wait for; (4) marshal the record into a reused buffer. (1)–(3) remove about half of the calls and most of the allocations.`

func contendWhy(res *Results) string {
	var b strings.Builder
	b.WriteString(`Waiters in other processes are not told of a release: they poll, with exponential backoff from 1 ms to PollMax (50 ms by default) and jitter (lock.go, waitState.pause; wake.go wakes waiters only inside the releasing process). `)
	b.WriteString(`**lockfile**: a process that releases and loops back re-creates P within microseconds, while the others sleep their backoff, so one process keeps the lock for many rounds: fairness near 0 and few handoffs, though rounds/s can stay high. `)
	b.WriteString(`**lockdir**: waiters queue in P.queue and are handed the lock in turn under the guard (rw.go, schedule), which makes turns fair, but a handed-over lock sits unused until its waiter's next poll finds its UUID in P/owner, and each hand-on lists the queue and reads every waiter's record under P.break: few rounds/s, each one a handoff. `)
	for _, f := range res.FS {
		lf, lft := findContend(f, 4, "dotlock-lockfile", ""), findContend(f, 4, "dotlock-lockfile", "WithPoll(1ms, 1ms)")
		ld, ldt := findContend(f, 4, "dotlock-lockdir", ""), findContend(f, 4, "dotlock-lockdir", "WithPoll(1ms, 1ms)")
		if lf != nil && lft != nil && ld != nil && ldt != nil {
			fmt.Fprintf(&b, "Evidence on %s at 4 processes: polling every 1 ms (WithPoll(1ms, 1ms)) takes lockfile from %.0f to %.0f handoffs/s (fairness %.2f → %.2f) and lockdir from %.0f to %.0f rounds/s (handoff median %s → %s); the kernel-lock peers, whose waiters the release itself wakes, hand over in %s. ",
				f.Label(), lf.HandoffsPS, lft.HandoffsPS, lf.Fairness, lft.Fairness, ld.RoundsPerS, ldt.RoundsPerS, dur(ld.LatMedian), dur(ldt.LatMedian), kernelLat(f))
		}
	}
	b.WriteString(`Suggested library changes: (1) wake waiters on release instead of sleeping through it: on Linux, an inotify watch on the lock's parent directory for P's name (IN_DELETE, IN_MOVED_FROM) — and, for lock directories, on P for IN_CREATE of owner or r.<uuid>, the handoff a queued waiter waits for — selected together with the backoff timer, which stays as the fallback for changes made on other hosts of a network filesystem (inotify sees only this host's); (2) for lockfile fairness, make a waiter that has waited longer than about 1 ms visible (a marker beside P, or lockdir's queue), and let a releasing process that sees one not take P again until someone else has (sync.Mutex's starvation mode does the same); (3) for lockdir, hand on outside the guard's critical path where possible, and have the handed-over waiter adopt at once on the inotify event.`)
	return b.String()
}

func kernelLat(f *FSResults) string {
	if g := findContend(f, 4, "gofrs-flock", ""); g != nil {
		return dur(g.LatMedian) + " (gofrs-flock, median)"
	}
	return "microseconds"
}

func crashWhy(res *Results) string {
	var b strings.Builder
	b.WriteString(`A same-host dead holder is recognised at once (its PID is gone, or a zombie) — but only when a waiter looks, and a waiter that has waited for a while looks every 25–50 ms (the backoff at PollMax, with jitter); lock directories' queued waiters judge the holder in the same poll loop. So recovery is half a poll period on average. `)
	for _, f := range res.FS {
		var parts []string
		for _, c := range f.Crash {
			if !c.Remote && c.Impl.Group != "dotlock" && len(c.Times) > 0 && c.Impl.Name != "node proper-lockfile" {
				parts = append(parts, fmt.Sprintf("%s %s", c.Impl.Label(), dur(c.Median())))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "On %s the others recover in: %s. ", f.Label(), strings.Join(parts, ", "))
		}
	}
	b.WriteString(`Suggested library change: when the holder is on this host, wait on it: pidfd_open(2) on the recorded PID (checking afterwards that the process still has the recorded start ID, so that a reused PID is not waited for), and poll(2) on the pidfd together with the backoff timer — the pidfd becomes readable the moment the holder exits, and the waiter breaks the lock at once (B1–B5). With the inotify wake-up suggested above the timer becomes a fallback; for holders on other hosts the lease stays what it is.`)
	return b.String()
}

// syncNote: on a network filesystem dotlock also fsyncs its record (A4),
// which the raw floor does not; raw-excl-sync is that floor with the fsync.
func syncNote(res *Results) string {
	for _, f := range res.FS {
		if f.Alt == "" {
			continue
		}
		a, d, fl, fs := nsOf(f, "dotlock-lockfile"), nsOf(f, "dotlock-lockdir"), nsOf(f, "raw-excl"), nsOf(f, "raw-excl-sync")
		if a > 0 && d > 0 && fl > 0 && fs > 0 {
			return fmt.Sprintf("**On %s** every system call is a round trip to the server, and dotlock also fsyncs its record there (A4, so that other hosts see it), which the floors do not: with an fsync the O_EXCL floor takes %.0f µs instead of %.0f, and lockfile takes %.2f× that, lockdir %.2f×.\n\n", f.Label(), fs/1e3, fl/1e3, a/fs, d/fs)
		}
	}
	return ""
}

// scaleWhy compares dotlock's growth with its floor's on each filesystem.
func scaleWhy(res *Results) string {
	var b strings.Builder
	floor := map[string]string{"dotlock-lockfile": "raw-excl", "dotlock-lockdir": "raw-mkdir"}
	for _, f := range res.FS {
		var parts []string
		for _, s := range f.Scale {
			fl, ok := floor[s.Name]
			if !ok || s.Err != nil {
				continue
			}
			for _, t := range f.Scale {
				if t.Name == fl && t.Err == nil {
					parts = append(parts, fmt.Sprintf("%s lock %.2f× (its floor %s %.2f×), unlock %.2f× (floor %.2f×)", short(s.Name), s.Ratio(s.Lock), fl, t.Ratio(t.Lock), s.Ratio(s.Unlock), t.Ratio(t.Unlock)))
				}
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "Growth on %s: %s. ", f.Label(), strings.Join(parts, "; "))
		}
	}
	b.WriteString("Where dotlock grows and its floor does not, the cause is dotlock's own work per lock; where the floor grows as much, it is the filesystem's (ext4's directory index and journal under a directory of 10,000 entries) and, on this shared 2-core machine, other load: a rerun on a quiet machine tells them apart. Nothing in dotlock's lock path lists the directory the locks are in: each lock touches only its own names (P, P.last, P.break, and for lock directories P.queue); what lock directories list is P itself or P.queue, whose size is that lock's own readers and waiters.")
	return b.String()
}

// floorScale is the scale row of the raw primitive under a dotlock row.
func floorScale(f *FSResults, name string) *ScaleResult {
	fl := map[string]string{"dotlock-lockfile": "raw-excl", "dotlock-lockdir": "raw-mkdir"}[name]
	for i, s := range f.Scale {
		if s.Name == fl && s.Err == nil {
			return &f.Scale[i]
		}
	}
	return nil
}
