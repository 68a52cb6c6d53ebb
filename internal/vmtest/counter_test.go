package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdsPerHost is how many holds each client takes in each counter run.
const holdsPerHost = 10

// buildHelper builds vmcounter statically, for the guests.
func buildHelper(t *testing.T) string {
	if why := unsupported(); why != "" {
		t.Skip("vmtest: " + why)
	}
	bin := filepath.Join(t.TempDir(), "vmcounter")
	cmd := exec.Command("go", "build", "-o", bin, "./vmcounter")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vmcounter: %v\n%s", err, out)
	}
	return bin
}

// testCounter runs vmcounter on A and B at once against one counter, for
// each mount and both lock kinds, and checks that no update was lost and
// that tokens strictly increased.
func testCounter(t *testing.T, c *Cluster, helper string) {
	bin := filepath.Join(c.Share, "vmcounter")
	if err := copyFile(helper, bin); err != nil {
		t.Fatal(err)
	}
	guestBin := SharePath + "/vmcounter"
	// The default mounts, then the cache-off ones: all of a pass at once
	// (most of the time is spent waiting out caches), two passes to spare
	// the CPU.
	for _, defaults := range []bool{true, false} {
		var wg sync.WaitGroup
		for _, m := range Mounts {
			if m.Default != defaults {
				continue
			}
			for _, kind := range []string{"file", "dir"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					counterRun(t, c, guestBin, m, kind)
				}()
			}
		}
		wg.Wait()
	}
}

// counterRun is one counter run; it reports failures with t.Errorf so
// that every filesystem's result shows.
func counterRun(t *testing.T, c *Cluster, bin string, m Mount, kind string) {
	name := m.Name + "/" + kind
	// Every mount shows the same export: a directory of its own per run.
	dir := m.Path + "/counter-" + m.Name + "-" + kind
	counter := dir + "/counter"
	if _, errOut, exit, err := c.Run(A, time.Minute, "sh", "-c", "mkdir "+dir+" && echo 0 >"+counter); err != nil || exit != 0 {
		t.Errorf("%s: creating the counter: exit %d, %v %s", name, exit, err, errOut)
		return
	}
	begin := time.Now()
	args := []string{bin, "-kind", kind, "-lock", dir + "/lock", "-counter", counter, "-n", strconv.Itoa(holdsPerHost)}
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
	holds := 0
	for _, h := range []string{A, B} {
		out, errOut, exit, err := procs[h].Wait(4 * time.Minute)
		if err != nil || exit != 0 {
			t.Errorf("%s: on %s: exit %d, %v\n%s%s", name, h, exit, err, lastLines(out, 3), errOut)
		}
		n, bad := checkTokens(seen, h, out)
		holds += n
		if bad != "" {
			t.Errorf("%s: on %s: %s", name, h, bad)
		}
	}
	// A helper that failed took fewer holds: count those it reported.
	out, _, _, err := c.Run(A, time.Minute, "cat", counter)
	if got, want := strings.TrimSpace(out), strconv.Itoa(holds); err != nil || got != want {
		t.Errorf("%s: counter %q after %s holds (%v): updates lost", name, got, want, err)
	}
	t.Logf("%s: %d holds of %d, %d distinct tokens, counter %s, %v", name, holds, 2*holdsPerHost, len(seen), strings.TrimSpace(out),
		time.Since(begin).Round(100*time.Millisecond))
}

// checkTokens records in seen the tokens of host h's holds, from
// vmcounter's output, and returns how many holds there were and a
// description of any token not above h's previous one or also held by
// another.
func checkTokens(seen map[uint64]string, h, out string) (holds int, bad string) {
	var errs []string
	var last uint64
	var all []string
	for _, line := range strings.Split(out, "\n") {
		var i, v int
		var tok uint64
		if n, _ := fmt.Sscanf(line, "hold %d token %d counter %d", &i, &tok, &v); n != 3 {
			continue
		}
		if prev, ok := seen[tok]; ok {
			errs = append(errs, fmt.Sprintf("token %d also held on %s", tok, prev))
		}
		if tok <= last {
			errs = append(errs, fmt.Sprintf("token %d after %d", tok, last))
		}
		seen[tok], last = h, tok
		holds++
		all = append(all, strconv.FormatUint(tok, 10))
	}
	if errs != nil {
		errs = append(errs, "tokens on "+h+": "+strings.Join(all, " "))
	}
	return holds, strings.Join(errs, ", ")
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
