package vmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdsPerHost is how many holds each client takes in each counter run.
const holdsPerHost = 10

// buildHelper builds vmlock statically, for the guests.
func buildHelper(t *testing.T) string {
	if why := unsupported(); why != "" {
		t.Skip("vmtest: " + why)
	}
	bin := filepath.Join(t.TempDir(), "vmlock")
	cmd := exec.Command("go", "build", "-o", bin, "./vmlock")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vmlock: %v\n%s", err, out)
	}
	return bin
}

// testCounter runs vmlock counter on A and B at once against one counter,
// for each mount and each lock kind, and checks that no update was lost,
// that no shared hold saw a writer, and that tokens strictly increased,
// on each host and across them.
func testCounter(t *testing.T, c *Cluster) {
	// The default mounts, then the cache-off ones: all of a pass at once
	// (most of the time is spent waiting out caches), two passes to spare
	// the CPU.
	for _, defaults := range []bool{true, false} {
		var wg sync.WaitGroup
		for _, m := range Mounts {
			if m.Default != defaults {
				continue
			}
			for _, kind := range []string{"file", "dir", "shared"} {
				if !only(m.Name + "/" + kind) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					counterRun(t, c, m, kind, "counter", holdsPerHost)
				}()
			}
		}
		wg.Wait()
	}
}

// counterRun is one counter run; it reports failures with t.Errorf so
// that every filesystem's result shows.
func counterRun(t *testing.T, c *Cluster, m Mount, kind, tag string, n int) {
	name := m.Name + "/" + kind
	failedBefore := t.Failed()
	// Every mount shows the same export: a directory of its own per run.
	dir := m.Path + "/" + tag + "-" + m.Name + "-" + kind
	counter := dir + "/counter"
	if _, errOut, exit, err := c.Run(A, time.Minute, "sh", "-c", "mkdir "+dir+" && echo 0 >"+counter); err != nil || exit != 0 {
		t.Errorf("%s: creating the counter: exit %d, %v %s", name, exit, err, errOut)
		return
	}
	begin := time.Now()
	args := []string{SharePath + "/vmlock", "counter", "-kind", kind, "-lock", dir + "/lock", "-counter", counter, "-n", strconv.Itoa(n)}
	procs := map[string]*Proc{}
	for _, h := range []string{A, B} {
		p, err := c.Spawn(h, args...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		procs[h] = p
	}
	seen := map[uint64]string{} // token: host
	byValue := map[int]uint64{} // counter value a writer wrote: its token
	holds := 0
	for _, h := range []string{A, B} {
		out, errOut, exit, err := procs[h].Wait(4 * time.Minute)
		if err != nil || exit != 0 {
			t.Errorf("%s: on %s: exit %d, %v\n%s%s", name, h, exit, err, lastLines(out, 3), errOut)
		}
		n, bad := checkTokens(seen, byValue, h, out)
		holds += n
		if bad != "" {
			t.Errorf("%s: on %s: %s", name, h, bad)
		}
	}
	if bad := checkOrder(byValue); bad != "" {
		t.Errorf("%s: %s", name, bad)
	}
	if t.Failed() && !failedBefore {
		t.Logf("%s: the lock's files now, from A:\n%s", name, lockState(c, dir))
	}
	// A helper that failed took fewer holds: count those it reported.
	out, _, _, err := c.Run(A, time.Minute, "cat", counter)
	got, perr := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || perr != nil || got != holds {
		t.Errorf("%s: counter %q after %d holds (%v): updates lost", name, strings.TrimSpace(out), holds, errors.Join(err, perr))
	}
	if tag == "counter" && m.Default {
		measured.addCounter(m.Name, kind, 2*n, time.Since(begin))
	}
	t.Logf("%s: %d holds (%d exclusive), %d distinct tokens, counter %d, %v", name, 2*n, holds, len(seen), got,
		time.Since(begin).Round(100*time.Millisecond))
}

// checkTokens records in seen the tokens of host h's holds, from vmlock
// counter's output, and in byValue each write's token by the value it
// wrote; it returns how many exclusive holds there were and a
// description of any token not above h's previous one or also held by
// another.
func checkTokens(seen map[uint64]string, byValue map[int]uint64, h, out string) (holds int, bad string) {
	var errs []string
	var last uint64
	var all []string
	for _, line := range strings.Split(out, "\n") {
		var i, v int
		var tok uint64
		var what string
		if n, _ := fmt.Sscanf(line, "%s %d token %d counter %d", &what, &i, &tok, &v); n != 4 || (what != "hold" && what != "read") {
			continue
		}
		if prev, ok := seen[tok]; ok {
			errs = append(errs, fmt.Sprintf("token %d also held on %s", tok, prev))
		}
		if tok <= last {
			errs = append(errs, fmt.Sprintf("token %d after %d", tok, last))
		}
		seen[tok], last = h, tok
		all = append(all, strconv.FormatUint(tok, 10))
		if what == "hold" {
			holds++
			byValue[v] = tok
		}
	}
	if errs != nil {
		errs = append(errs, "tokens on "+h+": "+strings.Join(all, " "))
	}
	return holds, strings.Join(errs, ", ")
}

// lockState lists dir and its lock's directories from A, with the first
// lines of every record, for a failure's report.
func lockState(c *Cluster, dir string) string {
	out, errOut, _, err := c.Run(A, time.Minute, "sh", "-c", "cd "+dir+" && ls -la . lock lock.queue 2>&1; "+
		"for f in lock lock/* lock.* lock.queue/*; do [ -f \"$f\" ] && { echo \"== $f\"; head -c 400 \"$f\"; echo; }; done")
	return fmt.Sprintf("%s%s%v", out, errOut, err)
}

// checkOrder checks that the writers' tokens, across hosts, increase with
// the values they wrote: the order of the holds.
func checkOrder(byValue map[int]uint64) string {
	values := make([]int, 0, len(byValue))
	for v := range byValue {
		values = append(values, v)
	}
	sort.Ints(values)
	for i := 1; i < len(values); i++ {
		if a, b := byValue[values[i-1]], byValue[values[i]]; b <= a {
			return fmt.Sprintf("the hold that wrote %d had token %d, the one before it (wrote %d) token %d: tokens must increase across hosts", values[i], b, values[i-1], a)
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}
