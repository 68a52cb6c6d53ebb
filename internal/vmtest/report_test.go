package vmtest

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// measured collects what TestCluster measured; with DOTLOCK_VMTEST_REPORT
// set to a path, TestCluster writes it there as a section of
// bench/RESULTS.md (bench/netfs.md, which the bench driver includes).
var measured = &report{
	floor:    map[string]map[string]float64{},
	calls:    map[string]map[string]string{},
	counter:  map[string][2]float64{},
	turns:    map[string][]int{},
	takeover: map[string]map[string]time.Duration{},
}

type report struct {
	mu       sync.Mutex
	floor    map[string]map[string]float64       // mount: what: median ms
	calls    map[string]map[string]string        // mount: what: "TOTAL OP=N ..." per round
	counter  map[string][2]float64               // mount/kind: holds, seconds
	turns    map[string][]int                    // mount: holds per process (A, A, B, B)
	takeover map[string]map[string]time.Duration // fault: mount/kind: time
}

func (r *report) addFloor(mount string, med map[string]float64, calls map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.floor[mount] = med
	r.calls[mount] = calls
}

func (r *report) addCounter(mount, kind string, holds int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counter[mount+"/"+kind] = [2]float64{float64(holds), d.Seconds()}
}

func (r *report) addTurns(mount string, holds []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.turns[mount] = holds
}

func (r *report) addTakeovers(fault string, cases []lockCase, d []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]time.Duration{}
	for i, lc := range cases {
		m[lc.name()] = d[i]
	}
	r.takeover[fault] = m
}

// write writes the report as markdown to the path DOTLOCK_VMTEST_REPORT
// names, if set.
func (r *report) write(t *testing.T, c *Cluster) {
	path := os.Getenv("DOTLOCK_VMTEST_REPORT")
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(r.markdown(c)), 0o644); err != nil {
		t.Error(err)
	}
}

func (r *report) markdown(c *Cluster) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	var mounts []Mount
	for _, m := range Mounts {
		if m.Default {
			mounts = append(mounts, m)
		}
	}
	w("Written by `internal/vmtest`'s `TestCluster` with `DOTLOCK_VMTEST_REPORT` set (docs/VMTEST.md) on %s: ", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	w("three QEMU guests (a server with kernel nfsd and Samba exporting a tmpfs, and clients A and B), emulated (TCG: %v) on this machine's 2 cores, so every time below is far slower than on real hosts; compare them with the floors measured beside them. Default mount options. Lease 3 s, heartbeat 1 s.\n\n", c.AccelTCG)
	w("| | ")
	for _, m := range mounts {
		w("%s (`%s`) | ", m.Name, m.Options)
	}
	w("\n| --- |%s\n", strings.Repeat(" ---: |", len(mounts)))
	row := func(label string, cell func(m Mount) string) {
		w("| %s | ", label)
		for _, m := range mounts {
			w("%s | ", cell(m))
		}
		w("\n")
	}
	floor := func(what, against string) func(Mount) string {
		return func(m Mount) string {
			f := r.floor[m.Name]
			if f[what] == 0 {
				return ""
			}
			if against == "" {
				return fmt.Sprintf("%.1f ms", f[what])
			}
			return fmt.Sprintf("%.1f ms (%.1f×)", f[what], f[what]/f[against])
		}
	}
	row("O_EXCL create + unlink (floor), from A, uncontended", floor("excl", ""))
	row("mkdir + rmdir (floor)", floor("mkdir", ""))
	row("lockfile lock+unlock (× O_EXCL floor)", floor("lockfile", "excl"))
	row("lockdir lock+unlock (× mkdir floor)", floor("lockdir", "mkdir"))
	row("lockdir RLock+RUnlock (× mkdir floor)", floor("lockdir-shared", "mkdir"))
	callsRow := func(what, against string) func(Mount) string {
		return func(m Mount) string {
			n, _ := strconv.ParseFloat(firstField(r.calls[m.Name][what]), 64)
			f, _ := strconv.ParseFloat(firstField(r.calls[m.Name][against]), 64)
			if n == 0 || f == 0 {
				return ""
			}
			return fmt.Sprintf("%.0f (%.1f×)", n, n/f)
		}
	}
	row("server calls per O_EXCL create + write + close + unlink (floor)", callsRow("excl", "excl"))
	row("server calls per mkdir + owner file + rmdir (floor)", callsRow("mkdir", "mkdir"))
	row("server calls per lockfile lock+unlock (× O_EXCL floor's)", callsRow("lockfile", "excl"))
	row("server calls per lockdir lock+unlock (× mkdir floor's)", callsRow("lockdir", "mkdir"))
	row("server calls per lockdir RLock+RUnlock (× mkdir floor's)", callsRow("lockdir-shared", "mkdir"))
	for _, kind := range []string{"file", "dir", "shared"} {
		row(fmt.Sprintf("cross-host handoffs/s, %s: A and B take turns on one lock, holds per second (ms per hold and handoff)", kind), func(m Mount) string {
			v, ok := r.counter[m.Name+"/"+kind]
			if !ok || v[1] == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f/s (%.0f ms)", v[0]/v[1], 1000*v[1]/v[0])
		})
	}
	row(fmt.Sprintf("lock file, 2 processes on A and 2 on B for %v: holds per process (A, A, B, B; not run on SMB: docs/PROTOCOL.md, W7)", turnsFor), func(m Mount) string {
		return turnsCell(r.turns[m.Name])
	})
	faults := make([]string, 0, len(r.takeover))
	for f := range r.takeover {
		faults = append(faults, f)
	}
	sort.Strings(faults)
	for _, f := range faults {
		label := "taken over after " + f + " (file, dir, shared)"
		if f == faultRelease.name {
			label = "handoff latency: B waiting, A releases (file, dir, shared)"
		}
		row(label, func(m Mount) string {
			var parts []string
			for _, kind := range []string{"file", "dir", "shared"} {
				if d, ok := r.takeover[f][m.Name+"/"+kind]; ok {
					parts = append(parts, fmt.Sprintf("%.1f", d.Seconds()))
				}
			}
			if parts == nil {
				return ""
			}
			return strings.Join(parts, ", ") + " s"
		})
	}
	w("\nServer calls: what the client sent per round, counted by the client itself across 20 rounds (NFS: per-op RPCs in `/proc/self/mountstats`; SMB: commands in `/proc/fs/cifs/Stats`), the busiest first:\n\n")
	w("| mount | round | calls | by operation |\n| --- | --- | ---: | --- |\n")
	for _, m := range mounts {
		for _, what := range []string{"excl", "mkdir", "lockfile", "lockdir", "lockdir-shared"} {
			total, ops, _ := strings.Cut(r.calls[m.Name][what], " ")
			if total != "" {
				w("| %s | %s | %s | %s |\n", m.Name, what, total, ops)
			}
		}
	}
	w("\nHandoffs: 10 + 10 holds from A and B at once, each hold reading and rewriting a counter; the rate includes starting the two processes. Takeovers: from the moment the test asked for the fault (SIGKILL or SIGSTOP of A's holder, A's link cut, B's VM killed) to the other host's hold, with the other host waiting throughout. Handoff latency: the same, from the moment the test asked A's holders to release (they look for the request every 50 ms); B learns of a release only by polling.\n")
	return b.String()
}

// firstField is s up to its first space.
func firstField(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
}
