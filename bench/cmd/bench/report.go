package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// render writes RESULTS.md.
func render(res *Results) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# dotlock benchmarks\n\n")
	w("Written by `cd bench && go run ./cmd/bench` (bench/README.md) on %s; measuring took %v. ", res.Measured.UTC().Format("2006-01-02 15:04 MST"), res.Finished.Sub(res.Measured).Round(time.Second))
	w("Every number below was measured in that one run, side by side on the same filesystems; ratios compare numbers of the same run. Do not edit by hand: run it again.\n\n")
	if res.Cfg.quick {
		w("**-quick run: short measurements, rough numbers.**\n\n")
	}

	w("## Where we stand\n\n")
	targets := evaluate(res)
	w("| target | ")
	for _, f := range res.FS {
		w("%s | ", f.Label())
	}
	w("\n| --- |")
	for range res.FS {
		w(" --- |")
	}
	w("\n")
	for _, t := range targets {
		w("| %s | ", t.Name)
		for _, c := range t.Cells {
			w("%s | ", c)
		}
		w("\n")
	}
	w("\n✅ met, ❌ missed (by how much: the factor to gain), ℹ️ stated. Why each miss happens, and what would fix it, is under [Where targets are missed, and why](#where-targets-are-missed-and-why). Real NFS v3, NFS v4.2 and SMB 3.1.1 between VMs: [section 7](#7-real-nfs-and-smb-between-vms).\n\n")

	w("## Machine\n\n")
	w("| | |\n| --- | --- |\n")
	w("| CPU | %s, %d cores |\n", res.Sys.CPU, res.Sys.Cores)
	w("| kernel | %s |\n", res.Sys.Kernel)
	w("| Go | %s |\n", res.Sys.Go)
	w("| load average (1, 5, 15 min) | at start %s%s; highest 1-minute load seen while measuring (sampled every 5 s) %.2f; at end %s |\n", res.LoadBefore, waited(res), res.LoadPeak, res.LoadAfter)
	for _, f := range res.FS {
		w("| `%s` | %s |\n", f.Dir, res.Sys.FSTypes[f.Dir])
	}
	for _, v := range res.Sys.Versions {
		w("| %s | %s |\n", v[0], v[1])
	}
	w("\n")
	if len(res.Skipped) > 0 {
		w("Not measured:\n\n")
		for _, s := range res.Skipped {
			w("- %s\n", s)
		}
		w("\n")
	}

	w("## 1. Uncontended lock + unlock\n\n")
	w("One handle, one path, lock then unlock in a loop; median of the batches' time per lock+unlock. Go peers loop in a worker process of the driver (allocations from `runtime.MemStats` there: what `go test -bench Uncontended -benchmem` reports in bench/), measured in turn: seven rounds (three with -quick), each a batch of at least 100 ms (30 ms with -quick) and 20 cycles from each peer, each batch in a new worker process after 20 cycles of warm-up, so that the machine's drift moves the floors and dotlock alike; Node and Python loop in their own process. ")
	w("The floors write a record of dotlock's size (%d bytes).\n\n", recordSize())
	for _, f := range res.FS {
		if len(f.Uncontended) == 0 {
			continue
		}
		w("### %s\n\n", f.Label())
		if why := f.Excluded["nightlyone"]; why != "" && f.Alt != "" {
			w("nightlyone/lockfile is excluded here (%s): its TryLock hard-links a temporary file to the lock path and checks success with os.SameFile, which never holds on sshfs (inode numbers are per name there), so it takes its own fresh lock for a stale one, removes it and recurses for ever, leaking a temporary file and a pidfd each time.\n\n", why)
		}
		excl, mk := nsOf(f, "raw-excl"), nsOf(f, "raw-mkdir")
		w("| implementation | µs per lock+unlock | × O_EXCL floor | × mkdir floor | allocs/op | B/op |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, u := range f.Uncontended {
			if u.Err != nil {
				w("| %s | %s | | | | |\n", u.Name, errCell(u.Err))
				continue
			}
			al, by := "", ""
			if u.Allocs >= 0 {
				al, by = fmt.Sprintf("%.0f", u.Allocs), fmt.Sprintf("%.0f", u.Bytes)
			}
			w("| %s | %.1f | %s | %s | %s | %s |\n", u.Name, u.NsOp/1e3, ratio(u.NsOp, excl), ratio(u.NsOp, mk), al, by)
		}
		w("\n")
	}
	for _, f := range res.FS {
		renderCalls(w, f)
	}
	w("What each does: ")
	var abouts []string
	for _, n := range benchUncontended() {
		abouts = append(abouts, fmt.Sprintf("**%s**: %s", n, about(n)))
	}
	abouts = append(abouts, "**node proper-lockfile**: lock() (mkdir + mtime probe, update timer) / release()", "**python SoftFileLock**: O_EXCL create / close + unlink", "**python FileLock**: open + flock(LOCK_NB) / LOCK_UN + close")
	w("%s.\n\n", strings.Join(abouts, "; "))

	w("## 2. Contended\n\n")
	w("N processes on one lock, each looping lock → read the counter file, add one, write it with its own ID → unlock, for %v. ", res.Cfg.dur)
	w("**Rounds/s**: all rounds. **Handoffs/s**: rounds whose previous round was another process's. **Handoff latency**: from the holder's call to unlock to the next holder's lock returning, for handoffs (median, p99). **Fairness**: fewest/most rounds per process. ")
	w("The final counter is checked against the rounds counted: a lock that failed to exclude shows there. ")
	w("Kernel-lock peers (flock, gofrs-flock, lockedfile) block in the kernel; the others poll at the setting given (a setting sweep at 4 processes finds each polling peer's best); dotlock runs with its defaults unless a setting is given (rows marked WithPoll show what a faster poll would give, and are not the headline).\n\n")
	for _, f := range res.FS {
		if len(f.Contended) == 0 {
			continue
		}
		w("### %s\n\n", f.Label())
		if f.Alt != "" {
			w("Workers alternate between the two mounts: two clients of one network filesystem. A lock that excludes only within one mount (flock(2) on FUSE is local to the mount, as on NFS without lockd it would be local to the host) loses updates here, and is flagged.\n\n")
		}
		for _, n := range []int{2, 4, 8} {
			gof := findContend(f, n, "gofrs-flock", "")
			rows := contendRows(f, n)
			if len(rows) == 0 {
				continue
			}
			w("**%d processes**\n\n", n)
			w("| implementation | rounds/s | handoffs/s | × gofrs rounds | × gofrs handoffs | handoff latency median | p99 | fairness | rounds per process |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
			for _, r := range rows {
				if r.Err != nil {
					w("| %s | %s | | | | | | | |\n", r.Impl.Label(), errCell(r.Err))
					continue
				}
				lost := ""
				if r.Lost != "" {
					lost = " ⚠️ " + r.Lost
				}
				gr, gh := "", ""
				if gof != nil && gof.Lost == "" {
					gr, gh = ratio(r.RoundsPerS, gof.RoundsPerS), ratio(r.HandoffsPS, gof.HandoffsPS)
				}
				w("| %s | %.0f | %.0f | %s | %s | %s | %s | %.2f | %s%s |\n", r.Impl.Label(), r.RoundsPerS, r.HandoffsPS, gr, gh,
					dur(r.LatMedian), dur(r.LatP99), r.Fairness, ints(r.PerProc), lost)
			}
			w("\n")
		}
	}

	w("## 3. Crash recovery\n\n")
	w("A holder process takes the lock; a waiter process starts waiting; %v later the holder is SIGKILLed; the time from the kill to the waiter holding the lock (CLOCK_MONOTONIC in both). ", 200*time.Millisecond)
	w("A lock that a dead holder keeps for good shows as *never* (the waiter gave up). The \"other host\" rows run the holder in its own UTS namespace with another host name, so that dotlock cannot probe its process and must judge it by its lease (StaleAfter 1 s, heartbeat every 250 ms), as it judges holders on other hosts of a network filesystem.\n\n")
	for _, f := range res.FS {
		if len(f.Crash) == 0 {
			continue
		}
		w("### %s\n\n", f.Label())
		if f.Alt != "" {
			w("The holder works through one mount, the waiter through the other.\n\n")
		}
		w("| implementation | holder | median | min | max | runs |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
		for _, c := range f.Crash {
			holder := "same host"
			if c.Remote {
				holder = "other host (lease)"
			}
			if c.Err == errNoExclusion {
				w("| %s | %s | %v | | | |\n", c.Impl.Label(), holder, c.Err)
				continue
			}
			if c.Err != nil {
				w("| %s | %s | %s | | | |\n", c.Impl.Label(), holder, errCell(c.Err))
				continue
			}
			if c.Never > 0 && len(c.Times) == 0 {
				w("| %s | %s | never (still held after %v) | | | %d |\n", c.Impl.Label(), holder, c.Timeout, c.Never)
				continue
			}
			w("| %s | %s | %s | %s | %s | %d |\n", c.Impl.Label(), holder, dur(c.Median()), dur(pct(c.Times, 0)), dur(pct(c.Times, 100)), len(c.Times))
		}
		w("\n")
	}

	w("## 4. Scale\n\n")
	w("Measured on the local filesystems only (10,000 locks at sshfs's milliseconds per operation would take minutes). ")
	w("Distinct locks: N handles on N paths in one directory, taken one after another and all held, then released in the same order; the mean cost per operation within each range of how many were already held (median of 3 runs, each in a fresh process). Readers: N handles on one lock, each taking a shared hold while the others keep theirs (median of 5 runs). **× growth** is the last range's cost over the first's: flat is about 1; compare it with the floor's own growth on the same filesystem (ext4's directory grows, and its journal commits interleave). **Descriptors left open**: how many more the process has open after releasing everything than before taking the first.\n\n")
	for _, f := range res.FS {
		if len(f.Scale) == 0 {
			continue
		}
		w("### %s\n\n", f.Label())
		for _, what := range scaleKinds(f) {
			var rows []ScaleResult
			for _, s := range f.Scale {
				if s.What == what {
					rows = append(rows, s)
				}
			}
			w("**%s** — µs per operation, by how many were held before it\n\n", what)
			bk := rows[0].Buckets
			w("| implementation |")
			for _, x := range bk {
				w(" lock %s |", x)
			}
			w(" × growth |")
			for _, x := range bk {
				w(" unlock %s |", x)
			}
			w(" × growth | descriptors left open |\n| --- |")
			for range 2*(len(bk)+1) + 1 {
				w(" ---: |")
			}
			w("\n")
			for _, s := range rows {
				if s.Err != nil {
					w("| %s | %s |\n", s.Name, errCell(s.Err))
					continue
				}
				w("| %s |", s.Name)
				for _, v := range s.Lock {
					w(" %.1f |", v/1e3)
				}
				w(" %.2f |", s.Ratio(s.Lock))
				for _, v := range s.Unlock {
					w(" %.1f |", v/1e3)
				}
				w(" %.2f | %d |\n", s.Ratio(s.Unlock), s.FDsLeft)
			}
			w("\n")
			for _, s := range rows {
				if s.FDsLeft > 0 && s.Name == "nightlyone" {
					w("nightlyone/lockfile still had %d more descriptors open after releasing all %s: pidfds (they show in /proc/PID/fd as anon_inode:[pidfd]) from os.FindProcess — which opens one on Linux since Go 1.23 — in its owner checks, which never call Release, so each stays open until the garbage collector finalises its os.Process. A burst of locks can run out of descriptors meanwhile: an earlier version of this driver, which ran the three repetitions in one process, failed with \"too many open files\".\n\n", s.FDsLeft, strings.TrimSuffix(s.What, " in one directory, all held"))
				}
			}
		}
	}

	w("## 5. The command line\n\n")
	w("Whole-process wall time of taking a free lock, running true(1) under it and releasing it: each command exec'd directly (no shell), run one after another, %d times after a warm-up; median and p90. procmail's lockfile(1) cannot run a command, so its row is three processes (lockfile, true, rm), as a script uses it. `dotlock --help` takes no lock and runs nothing: it is the cost of starting dotlock's Go process (dynamic loading, runtime and package initialisation — gopsutil's among them), which the lock and the child's fork, exec and wait come on top of. The Go floor (bench/cmd/gorun, built like the static dotlock) is a Go program that does nothing but run true through os/exec and wait for it: what any command written in Go pays before it does anything of its own.\n\n", cliReps(res))
	for _, f := range res.FS {
		if len(f.CLI) == 0 {
			continue
		}
		w("### %s\n\n", f.Label())
		var fl time.Duration
		for _, c := range f.CLI {
			if strings.HasPrefix(c.Name, "flock") {
				fl = c.Median()
			}
		}
		w("| command | median | p90 | × flock(1) | argv |\n| --- | ---: | ---: | ---: | --- |\n")
		for _, c := range f.CLI {
			if c.Err != nil {
				msg := strings.ReplaceAll(strings.TrimSpace(c.Err.Error()), "\n", " ")
				msg = strings.ReplaceAll(msg, f.Dir, "MOUNT")
				if strings.HasPrefix(c.Name, "dotlockfile") && strings.Contains(msg, "Permission denied") && f.Alt != "" {
					msg += " (dotlockfile is setgid mail, and a FUSE mount without allow_other refuses other credentials)"
				}
				w("| %s | error: %s | | | |\n", c.Name, msg)
				continue
			}
			w("| %s | %s | %s | %s | `%s` |\n", c.Name, dur(c.Median()), dur(c.P90()), ratio(float64(c.Median()), float64(fl)), c.Argv)
		}
		w("\n")
	}

	renderSlots(w, res)
	renderNetFS(w)
	w("## Where targets are missed, and why\n\n")
	w("%s\n", analysis(res, targets))
	return b.String()
}

func cliReps(res *Results) int {
	if res.Cfg.quick {
		return 10
	}
	return 60
}

func waited(res *Results) string {
	if res.QuietWaited > 0 {
		return fmt.Sprintf(" (after waiting %v for the 1-minute load to fall below %.2f)", res.QuietWaited, res.Cfg.quiet)
	}
	return ""
}

func about(name string) string {
	for n, p := range peersAbout() {
		if n == name {
			return p
		}
	}
	return ""
}

func scaleKinds(f *FSResults) []string {
	var ks []string
	seen := map[string]bool{}
	for _, s := range f.Scale {
		if !seen[s.What] {
			seen[s.What] = true
			ks = append(ks, s.What)
		}
	}
	return ks
}

// contendRows: the base rows at n, then the sweep rows.
func contendRows(f *FSResults, n int) []ContendResult {
	var rs []ContendResult
	for _, r := range f.Contended {
		if r.Procs == n {
			rs = append(rs, r)
		}
	}
	order := map[string]int{"floor": 0, "dotlock": 1, "Go": 2, "Node": 3, "Python": 4}
	sort.SliceStable(rs, func(a, b int) bool {
		if order[rs[a].Impl.Group] != order[rs[b].Impl.Group] {
			return order[rs[a].Impl.Group] < order[rs[b].Impl.Group]
		}
		return rs[a].Impl.Name < rs[b].Impl.Name
	})
	return rs
}

func findContend(f *FSResults, n int, name, setting string) *ContendResult {
	for i, r := range f.Contended {
		if r.Procs == n && r.Impl.Name == name && r.Impl.Setting == setting && r.Err == nil {
			return &f.Contended[i]
		}
	}
	return nil
}

func nsOf(f *FSResults, name string) float64 {
	for _, u := range f.Uncontended {
		if u.Name == name && u.Err == nil {
			return u.NsOp
		}
	}
	return 0
}

func ratio(a, b float64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", a/b)
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return d.Round(100 * time.Millisecond).String()
}

func ints(v []int) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, " ")
}

// errCell shows an error in a table cell: exclusions as they are, other
// errors marked as such.
func errCell(err error) string {
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ")
	msg = strings.ReplaceAll(msg, "|", "\\|")
	if strings.HasPrefix(msg, "excluded") {
		return msg
	}
	return "error: " + msg
}

// renderNetFS writes section 7 from netfs.md, which the VM suite writes
// (internal/vmtest, TestCluster with DOTLOCK_VMTEST_REPORT=bench/netfs.md):
// real NFS and SMB need three VMs and root, which a bench run does not
// start.
func renderNetFS(w func(string, ...any)) {
	b, err := os.ReadFile("netfs.md")
	if err != nil {
		return
	}
	w("## 7. Real NFS and SMB between VMs\n\n%s\n", b)
}

// renderSlots writes scenario 6, the counting lock.
func renderSlots(w func(string, ...any), res *Results) {
	w("## 6. Counting lock\n\n")
	w("dotlock's semaphore (package semaphore): 2N processes share N slots, each looping acquire → hold 1 ms → release for the run's duration. Holds per second, the most holders seen at once (from CLOCK_MONOTONIC intervals inside the holds: never above N), and utilisation: time held over N × duration (1 would be every slot always busy; the rest is the cost of handing slots on). On sshfs the processes alternate between the two mounts. Its uncontended cost (one slot, no waiters) is in section 1, as `dotlock-semaphore`.\n\n")
	for _, f := range res.FS {
		if len(f.Slots) == 0 {
			continue
		}
		w("### %s\n\n", f.Label())
		w("| slots | processes | holds/s | peak at once | utilisation | holds per process |\n| ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, r := range f.Slots {
			if r.Err != nil {
				w("| %d | %d | %s | | | |\n", r.Slots, r.Procs, errCell(r.Err))
				continue
			}
			w("| %d | %d | %.0f | %d | %.2f | %s |\n", r.Slots, r.Procs, float64(r.Holds)/r.Dur.Seconds(), r.Peak, r.Util, ints(r.PerProc))
		}
		w("\n")
	}
}
