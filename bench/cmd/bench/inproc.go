package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// UncontendedResult is scenario 1 for one implementation on one filesystem.
type UncontendedResult struct {
	Name    string
	Group   string
	NsOp    float64 // median over batches
	Allocs  float64 // per lock+unlock (in-process Go peers only; -1 otherwise)
	Bytes   float64
	Batches []float64
	Err     error
}

// uncontendedRounds measures the Go implementations names (less those
// excluded, with why) in turn, one batch each per round, so that a machine
// whose speed drifts moves all of them alike and their ratios to the
// floors hold: measured one after the other, each for its seven batches,
// the sshfs floors and dotlock moved apart by up to a quarter between two
// runs of the same code.
func uncontendedRounds(names []string, excluded map[string]string, dir string, rounds int, batchDur time.Duration) []UncontendedResult {
	rs := make([]UncontendedResult, len(names))
	allocs, bytes := make([][]float64, len(names)), make([][]float64, len(names))
	for i, name := range names {
		rs[i] = UncontendedResult{Name: name, Allocs: -1, Bytes: -1}
		if why := excluded[name]; why != "" {
			rs[i].Err = fmt.Errorf("excluded: %s", why)
		}
	}
	for range rounds {
		for i := range rs {
			if rs[i].Err != nil {
				continue // excluded, or failed in an earlier round
			}
			r := uncontendedGo(rs[i].Name, dir, 1, batchDur)
			if r.Err != nil {
				rs[i].Err = r.Err
				continue
			}
			rs[i].Batches = append(rs[i].Batches, r.Batches...)
			allocs[i], bytes[i] = append(allocs[i], r.Allocs), append(bytes[i], r.Bytes)
		}
	}
	for i := range rs {
		if rs[i].Err == nil {
			rs[i].NsOp, rs[i].Allocs, rs[i].Bytes = median(rs[i].Batches), median(allocs[i]), median(bytes[i])
		}
	}
	return rs
}

// uncontendedGo measures lock+unlock of a Go peer in a worker process of
// its own (so that a peer that hangs can be given up on): batches of about
// batchDur each, median ns/op, with allocations from runtime.MemStats.
func uncontendedGo(name, dir string, batches int, batchDur time.Duration) UncontendedResult {
	r := UncontendedResult{Name: name, Allocs: -1, Bytes: -1}
	d, err := os.MkdirTemp(dir, "uncontended-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(d)
	c := exec.Command(self, "worker", "uncontended", name, filepath.Join(d, "x.lock"), strconv.Itoa(batches), batchDur.String())
	out, err := runTimeout(c, 2*time.Minute) // batches are at least 20 cycles: slow peers on sshfs take a while
	if err != nil {
		r.Err = err
		return r
	}
	var allocs, bytes []float64
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "batch" {
			ns, _ := strconv.ParseFloat(f[1], 64)
			a, _ := strconv.ParseFloat(f[2], 64)
			b, _ := strconv.ParseFloat(f[3], 64)
			r.Batches, allocs, bytes = append(r.Batches, ns), append(allocs, a), append(bytes, b)
		}
	}
	if len(r.Batches) == 0 {
		r.Err = fmt.Errorf("no batches in %q", out)
		return r
	}
	r.NsOp, r.Allocs, r.Bytes = median(r.Batches), median(allocs), median(bytes)
	return r
}

// runTimeout runs c and returns its stdout; a command still running after
// timeout is killed and reported as hung.
func runTimeout(c *exec.Cmd, timeout time.Duration) (string, error) {
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return stdout.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return stdout.String(), nil
	case <-time.After(timeout):
		c.Process.Kill()
		<-done
		return stdout.String(), fmt.Errorf("no result within %v: hung", timeout)
	}
}

// probe checks that a Go peer locks and unlocks at all on a filesystem.
func probe(spec, dir string) error {
	d, err := os.MkdirTemp(dir, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	_, err = runTimeout(exec.Command(self, "worker", "probe", spec, filepath.Join(d, "x.lock")), 10*time.Second)
	return err
}

// uncontendedProc measures a whole-process peer, which loops and reports
// ns/op per batch itself.
func uncontendedProc(impl Impl, dir string, batches, ops int) UncontendedResult {
	r := UncontendedResult{Name: impl.Name, Group: impl.Group, Allocs: -1, Bytes: -1}
	d, err := os.MkdirTemp(dir, "uncontended-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(d)
	c := impl.uncontended(filepath.Join(d, "x.lock"), batches, ops)
	out, err := c.Output()
	if err != nil {
		if ee, ok := err.(interface{ Stderr() []byte }); ok {
			err = fmt.Errorf("%v: %s", err, ee.Stderr())
		}
		r.Err = fmt.Errorf("%s: %v", impl.Name, err)
		return r
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "ns" {
			v, _ := strconv.ParseFloat(f[1], 64)
			r.Batches = append(r.Batches, v)
		}
	}
	if len(r.Batches) == 0 {
		r.Err = fmt.Errorf("%s: no batches in %q", impl.Name, out)
		return r
	}
	r.NsOp = median(r.Batches)
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ScaleResult is one row of scenario 4: mean cost per operation in
// buckets of the count already held.
type ScaleResult struct {
	Name    string
	What    string
	Buckets []string  // e.g. "1–100"
	Lock    []float64 // ns/op per bucket: taking one more while the others are held
	Unlock  []float64 // ns/op per bucket: releasing, in the same order
	FDsLeft int       // descriptors still open after everything was released (max over runs)
	Err     error
}

// Ratio is the cost of the last bucket over the first (flat: about 1).
func (s ScaleResult) Ratio(v []float64) float64 {
	if len(v) < 2 || v[0] == 0 {
		return 0
	}
	return v[len(v)-1] / v[0]
}

// scale runs reps runs of "bench worker scale" (each in a fresh process)
// and takes the median per bucket. kind is "distinct" (n locks in one
// directory, all held) or "readers" (n shared holds on one lock).
func scale(name, kind, dir string, n, reps int) ScaleResult {
	first := 100
	what := fmt.Sprintf("%d distinct locks in one directory, all held", n)
	if kind == "readers" {
		first, what = 10, fmt.Sprintf("%d readers on one lock", n)
	}
	bounds := decades(first, n)
	r := ScaleResult{Name: name, What: what}
	for i := range bounds {
		lo := 1
		if i > 0 {
			lo = bounds[i-1] + 1
		}
		r.Buckets = append(r.Buckets, fmt.Sprintf("%d–%d", lo, bounds[i]))
	}
	lockRuns := make([][]float64, len(bounds))
	unlockRuns := make([][]float64, len(bounds))
	for range reps {
		d, err := os.MkdirTemp(dir, "scale-")
		if err != nil {
			r.Err = err
			return r
		}
		out, err := runTimeout(exec.Command(self, "worker", "scale", name, d, kind, strconv.Itoa(n), strconv.Itoa(first)), 5*time.Minute)
		os.RemoveAll(d)
		if err != nil {
			r.Err = err
			return r
		}
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			var into [][]float64
			switch f[0] {
			case "lock":
				into = lockRuns
			case "unlock":
				into = unlockRuns
			case "fds-left":
				k, _ := strconv.Atoi(f[1])
				r.FDsLeft = max(r.FDsLeft, k)
				continue
			default:
				continue
			}
			for i, x := range f[1:] {
				if i < len(into) {
					v, _ := strconv.ParseFloat(x, 64)
					into[i] = append(into[i], v)
				}
			}
		}
	}
	for i := range bounds {
		r.Lock = append(r.Lock, median(lockRuns[i]))
		r.Unlock = append(r.Unlock, median(unlockRuns[i]))
	}
	return r
}

// decades: first, 10*first, ..., n.
func decades(first, n int) []int {
	var b []int
	for k := first; k < n; k *= 10 {
		b = append(b, k)
	}
	return append(b, n)
}
