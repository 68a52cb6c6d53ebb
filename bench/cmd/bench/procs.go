package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotlock/dotlock/bench"
)

// proc is a worker process: its stdout lines arrive on lines.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

func startProc(c *exec.Cmd) (*proc, error) {
	p := &proc{cmd: c, lines: make(chan string, 16), exited: make(chan struct{})}
	c.Stderr = &p.stderr
	in, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = in
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = c.Wait() // reaps at once: a killed holder is no zombie for long
		close(p.exited)
	}()
	return p, nil
}

// startReady starts a worker for each command (appending it to *ps, for
// the caller's cleanup) and waits until each says "ready".
func startReady(ps *[]*proc, cmds []*exec.Cmd) ([]*proc, error) {
	for _, c := range cmds {
		p, err := startProc(c)
		if err != nil {
			return *ps, err
		}
		*ps = append(*ps, p)
	}
	for _, p := range *ps {
		if _, err := p.expect("ready", 30*time.Second); err != nil {
			return *ps, err
		}
	}
	return *ps, nil
}

// goAll starts the ready workers' runs, to end dur from now.
func goAll(ps []*proc, dur time.Duration) {
	end := bench.Mono() + dur.Nanoseconds()
	for _, p := range ps {
		fmt.Fprintf(p.stdin, "go %d\n", end)
	}
}

// expect waits for a line starting with prefix and returns it.
func (p *proc) expect(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.exited
				return "", fmt.Errorf("%s exited (%v) before %q: %s", p.name(), p.err, prefix, strings.TrimSpace(p.stderr.String()))
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s: no %q within %v", p.name(), prefix, timeout)
		}
	}
}

func (p *proc) name() string {
	return filepath.Base(p.cmd.Path) + " " + strings.Join(p.cmd.Args[1:min(3, len(p.cmd.Args))], " ")
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	<-p.exited
}

// ContendResult is one run of scenario 2.
type ContendResult struct {
	Impl       Impl
	Procs      int
	Dur        time.Duration
	Rounds     int
	Handoffs   int
	PerProc    []int
	LatMedian  time.Duration // release to the next acquire by another process
	LatP99     time.Duration
	Lost       string // counter mismatch: exclusion failed
	Err        error
	RoundsPerS float64
	HandoffsPS float64
	Fairness   float64 // fewest/most rounds per process
}

type round struct {
	seq      int64
	acq, rel int64
	id       int
}

// contended runs n workers of impl on one lock for dur. dirs are views of
// one directory (two mounts of a network filesystem: the workers alternate
// between them), or just one.
func contended(impl Impl, dirs []string, n int, dur time.Duration) ContendResult {
	r := ContendResult{Impl: impl, Procs: n, Dur: dur}
	d, err := os.MkdirTemp(dirs[0], "contend-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(d)
	rel := filepath.Base(d)
	counter := filepath.Join(d, "counter")
	if err := os.WriteFile(counter, counterLine(0, "none"), 0o644); err != nil {
		r.Err = err
		return r
	}
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.kill()
		}
	}()
	var cmds []*exec.Cmd
	for i := range n {
		v := filepath.Join(dirs[i%len(dirs)], rel)
		out := filepath.Join(d, fmt.Sprintf("out.%d", i))
		cmds = append(cmds, impl.contend(filepath.Join(v, "x.lock"), filepath.Join(v, "counter"), strconv.Itoa(i), out))
	}
	if ps, err = startReady(&ps, cmds); err != nil {
		r.Err = err
		return r
	}
	goAll(ps, dur)
	var rounds []round
	for i, p := range ps {
		if _, err := p.expect("done", dur+60*time.Second); err != nil {
			r.Err = err
			return r
		}
		data, err := os.ReadFile(filepath.Join(d, fmt.Sprintf("out.%d", i)))
		if err != nil {
			r.Err = err
			return r
		}
		cnt := 0
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 {
				continue
			}
			var rd round
			rd.seq, _ = strconv.ParseInt(f[0], 10, 64)
			rd.acq, _ = strconv.ParseInt(f[1], 10, 64)
			rd.rel, _ = strconv.ParseInt(f[2], 10, 64)
			rd.id = i
			rounds = append(rounds, rd)
			cnt++
		}
		r.PerProc = append(r.PerProc, cnt)
	}
	r.Rounds = len(rounds)
	sort.Slice(rounds, func(a, b int) bool { return rounds[a].seq < rounds[b].seq })
	final, _ := os.ReadFile(counter)
	fc, _ := strconv.ParseInt(strings.Fields(string(final))[0], 10, 64)
	dups := 0
	for k := 1; k < len(rounds); k++ {
		if rounds[k].seq == rounds[k-1].seq {
			dups++
		}
	}
	if fc != int64(r.Rounds) || dups > 0 {
		r.Lost = fmt.Sprintf("counter %d after %d rounds (%d duplicate values): exclusion failed", fc, r.Rounds, dups)
	}
	var lats []int64
	for k := 1; k < len(rounds); k++ {
		if rounds[k].id != rounds[k-1].id && rounds[k].seq == rounds[k-1].seq+1 {
			r.Handoffs++
			lats = append(lats, rounds[k].acq-rounds[k-1].rel)
		}
	}
	secs := dur.Seconds()
	r.RoundsPerS = float64(r.Rounds) / secs
	r.HandoffsPS = float64(r.Handoffs) / secs
	if len(lats) > 0 {
		sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
		r.LatMedian = time.Duration(lats[len(lats)/2])
		r.LatP99 = time.Duration(lats[min(len(lats)-1, len(lats)*99/100)])
	}
	lo, hi := r.PerProc[0], r.PerProc[0]
	for _, c := range r.PerProc {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi > 0 {
		r.Fairness = float64(lo) / float64(hi)
	}
	return r
}

// CrashResult is scenario 3 for one implementation: how long after the
// holder's SIGKILL a waiter held the lock.
type CrashResult struct {
	Impl     Impl
	Remote   bool
	Times    []time.Duration // recoveries; never is not among them
	Never    int             // waits that timed out
	Timeout  time.Duration
	Err      error
	Expected string // target, for the table
}

func (c CrashResult) Median() time.Duration { return pct(c.Times, 50) }

func pct(ts []time.Duration, p int) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[min(len(s)-1, len(s)*p/100)]
}

// crash runs reps rounds of: a holder takes the lock; a waiter starts
// waiting; after settle the holder is SIGKILLed; the waiter reports when it
// holds. Slow recoveries (over a second) get fewer reps.
func crash(impl Impl, dirs []string, reps int, timeout, settle time.Duration) CrashResult {
	r := CrashResult{Impl: impl, Timeout: timeout}
	for rep := 0; rep < reps; rep++ {
		t, ok, err := crashOnce(impl, dirs, timeout, settle)
		if err != nil {
			r.Err = err
			return r
		}
		if !ok {
			r.Never++
			return r // a lock that stays held stays held
		}
		r.Times = append(r.Times, t)
		if t > time.Second && len(r.Times) >= 3 {
			return r
		}
	}
	return r
}

var errNoExclusion = fmt.Errorf("n/a: the waiter took the lock while the holder held it (no exclusion here)")

// crashOnce: the holder works through dirs[0], the waiter through the last
// of dirs (the other mount of a network filesystem).
func crashOnce(impl Impl, dirs []string, timeout, settle time.Duration) (time.Duration, bool, error) {
	d, err := os.MkdirTemp(dirs[0], "crash-")
	if err != nil {
		return 0, false, err
	}
	defer os.RemoveAll(d)
	lock := filepath.Join(d, "x.lock")
	waitLock := filepath.Join(dirs[len(dirs)-1], filepath.Base(d), "x.lock")
	h, err := startProc(impl.hold(lock))
	if err != nil {
		return 0, false, err
	}
	defer h.kill()
	if _, err := h.expect("held", 30*time.Second); err != nil {
		return 0, false, err
	}
	w, err := startProc(impl.wait(waitLock, timeout+settle))
	if err != nil {
		return 0, false, err
	}
	defer w.kill()
	if _, err := w.expect("ready", 30*time.Second); err != nil {
		return 0, false, err
	}
	// Let the waiter settle into its steady wait (backoff at its longest).
	time.Sleep(settle)
	select {
	case l := <-w.lines:
		if strings.HasPrefix(l, "acquired") {
			return 0, false, errNoExclusion
		}
		return 0, false, fmt.Errorf("waiter said %q while the holder lived", l)
	default:
	}
	t0 := bench.Mono()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return 0, false, err
	}
	l, err := w.expect("", timeout+settle+10*time.Second)
	if err != nil {
		return 0, false, err
	}
	if l == "timeout" {
		return 0, false, nil
	}
	f := strings.Fields(l)
	if len(f) != 2 || f[0] != "acquired" {
		return 0, false, fmt.Errorf("waiter said %q", l)
	}
	t1, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false, err
	}
	return time.Duration(t1 - t0), true, nil
}
