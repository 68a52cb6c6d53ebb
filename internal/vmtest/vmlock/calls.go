//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// serverCalls counts the calls this host's network filesystem clients
// have sent, by operation: NFS from /proc/self/mountstats (each mount's
// per-op RPC counts), SMB from /proc/fs/cifs/Stats (each share's command
// counts). The floor runs alone on its host, so the difference across a
// set of rounds is what those rounds cost the server.
func serverCalls() map[string]int64 {
	calls := map[string]int64{}
	nfsCalls(calls)
	smbCalls(calls)
	return calls
}

// nfsCalls adds the per-op lines of every NFS mount's statistics
// ("  OPEN: 12 12 0 ...": the first number is the operations sent).
func nfsCalls(calls map[string]int64) {
	f, err := os.Open("/proc/self/mountstats")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	inOps := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "device "):
			inOps = false
		case strings.TrimSpace(line) == "per-op statistics":
			inOps = true
		case inOps:
			op, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			fields := strings.Fields(rest)
			if !ok || len(fields) == 0 {
				continue
			}
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				calls[op] += n
			}
		}
	}
}

// smbCalls adds every share's command counts ("Creates: 12 total 0
// failed"; "OplockBreaks: 0 sent ..." too).
func smbCalls(calls map[string]int64) {
	data, err := os.ReadFile("/proc/fs/cifs/Stats")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		op, rest, ok := strings.Cut(strings.TrimSpace(line), ": ")
		fields := strings.Fields(rest)
		if !ok || len(fields) < 2 || (fields[1] != "total" && fields[1] != "sent") || strings.Contains(op, " ") {
			continue
		}
		if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			calls[op] += n
		}
	}
}

// callsLine describes the calls between before and after, per round:
// "calls NAME TOTAL OP=N OP=N ...", the busiest operation first.
func callsLine(name string, before, after map[string]int64, rounds int) string {
	type opCount struct {
		op string
		n  int64
	}
	var ops []opCount
	var total int64
	for op, n := range after {
		if d := n - before[op]; d > 0 {
			ops = append(ops, opCount{op, d})
			total += d
		}
	}
	slices.SortFunc(ops, func(a, b opCount) int {
		if a.n != b.n {
			return int(b.n - a.n)
		}
		return strings.Compare(a.op, b.op)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "calls %s %.1f", name, float64(total)/float64(rounds))
	for _, o := range ops {
		fmt.Fprintf(&b, " %s=%.1f", o.op, float64(o.n)/float64(rounds))
	}
	return b.String()
}
