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
	// 1. Uncontended. On a network filesystem every call is a round trip,
	// and the protocol's (docs/PROTOCOL.md, "Round trips") cost more of
	// them against the floor's few than on a local disk.
	uncontended := func(impl, floor, floorName string, local, network float64) func(f *FSResults) (string, bool, bool) {
		return func(f *FSResults) (string, bool, bool) {
			a, fl := nsOf(f, impl), nsOf(f, floor)
			if a == 0 || fl == 0 {
				return "", false, false
			}
			limit := local
			if f.Alt != "" {
				limit = network
			}
			r := a / fl
			s := fmt.Sprintf("%.2f× (%.1f vs %.1f µs)%s", r, a/1e3, fl/1e3, missBy(r, limit))
			if c, cf := callsOf(f, impl), callsOf(f, floor); c > 0 && cf > 0 {
				s += fmt.Sprintf("; %.0f requests to the server against %s's %.0f", c, floorName, cf)
			}
			if raw := nsOf(f, rawCallsOf[impl]); raw > 0 && r > limit {
				s += fmt.Sprintf("; its system calls alone, made bare, %.2f× the floor", raw/fl)
			}
			return s, r <= limit, true
		}
	}
	add("unc-file", "uncontended lockfile within 1.5× the O_EXCL floor on a local disk, 3× on a network filesystem", uncontended("dotlock-lockfile", "raw-excl", "O_EXCL", 1.5, 3))
	add("unc-dir", "uncontended lockdir within 1.5× the mkdir floor on a local disk, 2× on a network filesystem", uncontended("dotlock-lockdir", "raw-mkdir", "mkdir", 1.5, 2))
	add("unc-shared", "uncontended shared hold (RLock+RUnlock) within 4× the mkdir floor", uncontended("dotlock-rw-shared", "raw-mkdir", "mkdir", 4, 4))
	add("unc-nightly", "uncontended: never slower than nightlyone/lockfile", func(f *FSResults) (string, bool, bool) {
		if f.Excluded["nightlyone"] != "" {
			return "n/a: nightlyone/lockfile does not work here (section 1)", false, false
		}
		n := nsOf(f, "nightlyone")
		a, d := nsOf(f, "dotlock-lockfile"), nsOf(f, "dotlock-lockdir")
		if n == 0 || a == 0 || d == 0 {
			return "", false, false
		}
		s := fmt.Sprintf("lockfile %.2f×, lockdir %.2f× nightlyone's time", a/n, d/n)
		// A lock directory is made with mkdir: where its floor alone is
		// slower than nightlyone's lock file, no lockdir can match it.
		if m := nsOf(f, "raw-mkdir"); m > n {
			s += fmt.Sprintf(" (the mkdir floor alone %.2f×)", m/n)
		}
		return s, a <= n && d <= n, true
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
	add("cli", "`dotlock -n L true` (CGO_ENABLED=0 build) within 2× `flock -n L true`", func(f *FSResults) (string, bool, bool) {
		if f.Alt != "" {
			return "n/a: flock(1) locks only within one mount here; dotlock's lock is the server's (section 1)", false, false
		}
		d, fl := cliOf(f, "dotlock, CGO_ENABLED=0 build"), cliOf(f, "flock(1)")
		if d == 0 || fl == 0 {
			return "", false, false
		}
		r := float64(d) / float64(fl)
		floor := ""
		if g := cliOf(f, goFloorName); g > 0 {
			floor = fmt.Sprintf("; a Go program that only runs true: %.2f× flock, dotlock %.2f× that", float64(g)/float64(fl), float64(d)/float64(g))
		}
		return fmt.Sprintf("%.2f× (%s vs %s)%s%s", r, dur(d), dur(fl), missBy(r, 2), floor), r <= 2, true
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
// named come from reading internal/lockcore (acquire.go, wait.go,
// rw_*.go, store.go, notify_linux.go) and from strace of a lock/unlock loop (bench/README.md
// says how); the numbers come from this run.
func analysis(res *Results, ts []Target) string {
	groups := []struct {
		title string
		keys  []string
		why   func() string
	}{
		{"Uncontended cost", []string{"unc-file", "unc-dir", "unc-shared", "unc-nightly"}, func() string { return uncontendedWhy(res) }},
		{"Contention: handoffs, fairness, throughput", []string{"cont-handoffs", "cont-fair", "cont-polling"}, func() string { return contendWhy(res) }},
		{"Same-host crash recovery", []string{"crash-local"}, func() string { return crashWhy(res) }},
		{"Other-host crash recovery", []string{"crash-remote"}, func() string {
			return "The lease path takes StaleAfter after the holder's last heartbeat plus up to one poll: see the rows of section 3."
		}},
		{"Scale", []string{"scale"}, func() string { return scaleWhy(res) }},
		{"The command's start-up", []string{"cli"}, func() string { return cliWhy(res) }},
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

// rawCallsOf is the bare system calls of each dotlock kind that has them.
var rawCallsOf = map[string]string{"dotlock-lockfile": "raw-lockfile-calls", "dotlock-lockdir": "raw-lockdir-calls"}

func uncontendedWhy(res *Results) string {
	return syncNote(res) + rawCallsNote(res) + `**lockfile.** The floor is four system calls: create, write, close, unlink. dotlock's lockfile Lock + Unlock makes 16 on a local filesystem (strace of a lock/unlock loop on tmpfs): A1 the create; A3 reading P.last for the token (open, fstat, one read, close) and a lookup of P.last.1, the end of the slot chain; A4 the write; A5 an lstat of P.break; A6 an fstat of the entry and an lstat of P (the entry's identity: the open descriptor pins its inode); W4 an lstat of P.want, made only by a process that locks again right after its own release; and to release, R1 an lstat of P, the close, an lstat of P.last (P10: never replace what dotlock did not make; it is the file A3 read, unchanged since, by its stamp — until this stop an open, fstat, read and close), the unlink of P.last and the rename of P onto it. Beyond the calls: a UUID (getrandom) and the 1 KiB record to format, and a heartbeat timer per hold. What is left is the protocol's own: the token (four calls to read P.last, and a rename where the floor unlinks) and the checks that make a release safe. Keeping the last token in memory when this process was the last holder, validated by P.last's inode and change time, would save four calls, but inode numbers are reused and change times are coarse, so a token could go backwards: not done.

**lockdir** makes 23 calls against the mkdir floor's six: mkdir, then a descriptor of the new directory to create owner inside it (open, openat, close) rather than trusting the path, then the same as lockfile (its release renames owner out through a descriptor of P: open, rename, close), plus an lstat of P.queue on Lock and on Unlock (queued waiters and readers) and the rmdir. On a local filesystem and on sshfs those descriptors are O_PATH: the path is looked up, but the filesystem is not asked to open the directory, which to sshfs is an OPENDIR and a CLOSE each (8 of the 68 requests of a lockdir lock+unlock before).

**On a network filesystem** a lock costs its requests to the server (section 1's request counts for sshfs; section 7 for NFS and SMB). The O_EXCL floor sends four kinds: the create, the write, the close (sshfs) and the unlink. Besides the create, the write and the rename that replaces the unlink, lockfile sends an fsync (A4: the entry stays open for the heartbeat, and an NFS or SMB client would otherwise keep the record to itself until the close) and a lookup of P.break (A5), and reads four records, each an open, a read and a close: A3 P.last (the fencing token, P7), A6 the entry just written (P4: a breaker may have moved it while it was undecided, and a waiter that watched an earlier empty P may judge it empty; an inode compare is exact only on a local disk, and NFS's and sshfs's attribute caches and inode numbers cannot stand in for it), R1 the record before retiring it (P8: never retire another's), and P.last before renaming over it (P10: never replace what dotlock did not make). Each read was four to five requests until records were read in one read call (io.ReadAll's growing buffer took three reads and a fourth to see the end; with direct I/O each is a round trip): NFS v3 went from 27 to 15 calls per lock+unlock, SMB from 40 to 28. The four reads are what is left above the floor, and each buys a property; docs/PROTOCOL.md ("Round trips") counts them call by call. **rw-shared** changes the holder set under the guard P.break twice (join and leave), each time creating, syncing and reading back the guard and then moving it aside, reading and removing it: that, not the reader's own record, is most of its cost.

`
}

func contendWhy(res *Results) string {
	var b strings.Builder
	b.WriteString(`Waiters are woken by the release itself on Linux (W1: inotify on the lock's directory; W2: a pidfd on a live holder on this host) and a releaser that comes straight back lets an announced waiter in first (W4: P.want; docs/PROTOCOL.md, Waiting). What remains against the kernel lock: a handoff crosses into the waiting process twice (its inotify reader goroutine, then the waiting goroutine), and the waiter then runs a whole acquire (about 15 system calls), where flock(2) hands over inside the kernel. **lockdir** hands on under the guard P.break. The releaser first releases as an uncontended holder does (R1 reads its record; it moves it to P.last and removes P), then takes the guard (create, write, check), lists the queue and reads its records up to the head writer's (only that one where only writers queue), reads P.last for the token, and makes P and the head waiter's owner record; only then can the head find the lock handed to it (an strace of two contenders counts about 40 system calls from Unlock to there), while the releaser removes the head's queue record and drops the guard. Each waiter, once woken, reads P's record to see whether it was chosen, and judges its holder. `)
	for _, f := range res.FS {
		lf, lft := findContend(f, 4, "dotlock-lockfile", ""), findContend(f, 4, "dotlock-lockfile", "WithPoll(1ms, 1ms)")
		ld, ldt := findContend(f, 4, "dotlock-lockdir", ""), findContend(f, 4, "dotlock-lockdir", "WithPoll(1ms, 1ms)")
		if lf != nil && lft != nil && ld != nil && ldt != nil {
			fmt.Fprintf(&b, "On %s at 4 processes, polling every 1 ms (WithPoll(1ms, 1ms)) on top gives lockfile %.0f handoffs/s against %.0f (fairness %.2f against %.2f) and lockdir %.0f rounds/s against %.0f (handoff median %s against %s)",
				f.Label(), lft.HandoffsPS, lf.HandoffsPS, lft.Fairness, lf.Fairness, ldt.RoundsPerS, ld.RoundsPerS, dur(ldt.LatMedian), dur(ld.LatMedian))
			if f.Alt == "" {
				fmt.Fprintf(&b, ": where change notification works, faster polling adds nothing but load. The kernel-lock peers hand over in %s. ", kernelLat(f))
			} else {
				b.WriteString(". ")
			}
		}
	}
	b.WriteString(`On sshfs (and NFS, SMB) inotify sees only this host's changes, and the two mounts here are two clients: a lock file's waiter learns of the other mount's release by probing (W6: one exclusive create every 10 ms at most, from one waiter per host and lock; the others wait on a local flock), a lock directory's by polling its queue record (PollMin to PollMax, 1–50 ms by default). A handoff across the mounts then costs a whole lock+unlock's round trips (section 1: about 9 ms for lockfile here), which bounds the rate: a polling peer that sends 8 requests per lock+unlock can hand over more often than one that sends 56, however it waits. The processes of one mount would hand over to each other at once (inotify) and leave the other mount's out, so a lock file's waiter that has waited 200 ms marks P.want and the other mount's woken waiters give way to it (W7): each turn across the mounts then waits for that waiter's next probe, a few milliseconds a local handoff does not. Possible next steps: hand on in lockdir without the guard's full round trip where the queue has one waiter; batch a waiter's re-reads after a wake-up.`)
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
	b.WriteString(`On Linux a waiter holds a pidfd on a live holder on this host and is woken the moment it exits (W2); it then judges the record dead and breaks the lock under the guard (B1–B5, about 15 system calls), and a lockdir waiter is then handed the lock through the queue. Elsewhere, and where pidfd_open is refused, waiters find the death by polling (half of PollMax on average). On a network filesystem each of those calls is a round trip to the server, and the guard's and the new holder's records are synced there (A4): the break and the new acquire cost tens of round trips, which is the time measured on sshfs; the wake-up itself is as prompt as on a local disk. `)
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

// rawCallsNote compares, on each local filesystem, dotlock with its own
// system calls made bare (raw-lockfile-calls, raw-lockdir-calls): what
// the protocol's steps cost there, and what dotlock's work around them.
func rawCallsNote(res *Results) string {
	var b strings.Builder
	for _, f := range res.FS {
		ex, mk := nsOf(f, "raw-excl"), nsOf(f, "raw-mkdir")
		rf, rd := nsOf(f, "raw-lockfile-calls"), nsOf(f, "raw-lockdir-calls")
		df, dd := nsOf(f, "dotlock-lockfile"), nsOf(f, "dotlock-lockdir")
		if !f.local() || ex == 0 || mk == 0 || rf == 0 || rd == 0 || df == 0 || dd == 0 {
			continue
		}
		fmt.Fprintf(&b, "**On %s** dotlock's own system calls, made bare (raw-lockfile-calls, raw-lockdir-calls: nothing around them), take %.1f µs for lockfile's (%.2f× the O_EXCL floor) and %.1f µs for lockdir's (%.2f× the mkdir floor): that much the protocol's steps cost there, before any of dotlock's own work (the record formatted, a UUID, the token parsed, the heartbeat's timer, the checks). dotlock's lockfile takes %.1f µs: %s; its lockdir %.1f µs: %s.\n\n",
			f.Label(), rf/1e3, rf/ex, rd/1e3, rd/mk, df/1e3, ownWork(df, rf), dd/1e3, ownWork(dd, rd))
	}
	return b.String()
}

// ownWork says what dotlock's work around its calls (raw, in ns) cost,
// against its time (ns): where it is more than a tenth of the calls' time
// (less is within what the batches of a disk's journal vary).
func ownWork(dotlock, raw float64) string {
	if dotlock-raw > raw/10 {
		return fmt.Sprintf("its own work is the rest, %.1f µs", (dotlock-raw)/1e3)
	}
	return "as much as its calls alone, within a tenth (what a journal's commits make batches vary)"
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
			for _, t := range f.Scale {
				if t.Name == "raw-excl-open" && s.Name == "dotlock-lockfile" && t.Err == nil {
					parts = append(parts, fmt.Sprintf("raw-excl-open lock %.2f×, unlock %.2f×", t.Ratio(t.Lock), t.Ratio(t.Unlock)))
				}
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "Growth on %s: %s. ", f.Label(), strings.Join(parts, "; "))
		}
	}
	b.WriteString("raw-excl-open is the O_EXCL floor that keeps its descriptor open while held, as a lock file of dotlock's must (its heartbeat rewrites the record through the entry it created, never by name): where it grows as dotlock-lockfile does and raw-excl does not, the growth is what holding that many open files costs on that filesystem, paid alike by the peers that keep one open (gofrs-flock, lockedfile), not dotlock's work per lock. Where dotlock grows and its floor does not, the cause is dotlock's own work per lock; where the floor grows as much, it is the filesystem's (ext4's directory index and journal under a directory of 10,000 entries) and, on this shared 2-core machine, other load: a rerun on a quiet machine tells them apart. Nothing in dotlock's lock path lists the directory the locks are in: each lock touches only its own names (P, P.last, P.break, and for lock directories P.queue); what lock directories list is P itself or P.queue, whose size is that lock's own readers and waiters.")
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
