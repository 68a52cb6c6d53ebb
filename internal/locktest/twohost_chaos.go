package locktest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/sshfstest"
	"github.com/dotlock/dotlock/stale"
)

// The chaos test: RoleChaos workers on both hosts take the lock over and
// over, each hold incrementing a counter and logging its interval, while
// the test kills workers with SIGKILL at random moments and restarts them.
// Afterwards the log must show one holder at a time, increasing tokens,
// every increment accounted for, and progress after every kill.
//
// Times in the log are UnixNano readings of the wall clock of the process
// that wrote them. The two "hosts" are one machine here, sharing one clock,
// so the intervals of different hosts can be compared; between real hosts
// they could not (and dotlock never compares them: leases are measured on
// the observer's own monotonic clock).

const (
	chaosPerHost = 3
	// chaosLease is the workers' StaleAfter: short, so that a holder whose
	// host "crashed" is replaced quickly. Holders heartbeat every
	// chaosLease/4; a hold lasts a few milliseconds.
	chaosLease = 2 * time.Second
	// chaosSeedEnv overrides the seed of the kill schedule.
	chaosSeedEnv = "DOTLOCK_CHAOS_SEED"
	// chaosKeepEnv names a directory where a failed run's log is kept.
	chaosKeepEnv = "DOTLOCK_CHAOS_KEEP"
)

// chaosWorker is one incarnation of a worker process.
type chaosWorker struct {
	slot   int
	onB    bool
	host   string // host name, as in its records and log lines
	pid    int    // PID as it sees itself
	h      *Helper
	label  string
	killed bool // by the test
}

func (w *chaosWorker) id() string { return w.host + "/" + strconv.Itoa(w.pid) }

// chaosEvent is one round of killing: one worker, or all workers of one
// host at once (a host crash).
type chaosEvent struct {
	at       time.Time // just before the first SIGKILL
	crash    bool
	targeted bool // the victim was chosen because the record named it
	victims  []*chaosWorker
}

func (e *chaosEvent) String() string {
	var ids []string
	for _, v := range e.victims {
		ids = append(ids, v.id())
	}
	kind := "kill"
	switch {
	case e.crash:
		kind = "host crash"
	case e.targeted:
		kind = "kill holder"
	}
	return fmt.Sprintf("%s %s at %s", kind, strings.Join(ids, ","), e.at.Format("15:04:05.000"))
}

// chaosLog reads the log, as the server has it, as it grows.
type chaosLog struct {
	path    string
	off     int64
	partial []byte
	lines   []string
}

func (cl *chaosLog) update() error {
	f, err := os.Open(cl.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(cl.off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	cl.off += int64(len(b))
	b = append(cl.partial, b...)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		cl.lines = append(cl.lines, string(b[:i]))
		b = b[i+1:]
	}
	cl.partial = append([]byte(nil), b...)
	return nil
}

// chaosRec is a parsed log line.
type chaosRec struct {
	line   int
	kind   string // begin, end, break, lost, error
	tok    uint64
	host   string
	pid    int
	t0, t1 int64  // begin, end: the hold's start and end; break: t0 is when
	v      uint64 // begin: counter read; end: counter written
	// break only:
	vhost  string
	vpid   int
	reason string
	shared bool // begin, end: a shared hold (RoleChaosRW)
}

func (r chaosRec) id() string  { return r.host + "/" + strconv.Itoa(r.pid) }
func (r chaosRec) vid() string { return r.vhost + "/" + strconv.Itoa(r.vpid) }

func parseChaosLine(n int, s string) (chaosRec, error) {
	f := strings.Fields(s)
	r := chaosRec{line: n}
	var err error
	num := func(i int) int64 {
		if err != nil {
			return 0
		}
		x, e := strconv.ParseInt(f[i], 10, 64)
		if e != nil || x < 0 {
			err = fmt.Errorf("log line %d: bad number %q in %q", n, f[i], s)
		}
		return x
	}
	if len(f) == 0 {
		return r, fmt.Errorf("log line %d: empty", n)
	}
	r.kind = f[0]
	if (r.kind == "begin" || r.kind == "end") && f[len(f)-1] == "shared" {
		r.shared = true
		f = f[:len(f)-1]
	}
	switch {
	case r.kind == "begin" && len(f) == 6: // begin TOKEN HOST PID T0 V
		r.tok, r.host, r.pid, r.t0, r.v = uint64(num(1)), f[2], int(num(3)), num(4), uint64(num(5))
	case r.kind == "end" && len(f) == 7: // end TOKEN HOST PID T0 T1 V
		r.tok, r.host, r.pid, r.t0, r.t1, r.v = uint64(num(1)), f[2], int(num(3)), num(4), num(5), uint64(num(6))
	case r.kind == "break" && len(f) >= 7: // break VTOKEN VHOST VPID HOST PID T REASON
		r.tok, r.vhost, r.vpid, r.host, r.pid, r.t0 = uint64(num(1)), f[2], int(num(3)), f[4], int(num(5)), num(6)
		r.reason = strings.Join(f[7:], " ")
	case r.kind == "lost" || r.kind == "error":
		r.reason = s
	default:
		return r, fmt.Errorf("log line %d: malformed (torn or interleaved append?): %q", n, s)
	}
	return r, err
}

// chaosSeed returns the kill schedule's seed: fixed per kind and mode
// unless chaosSeedEnv sets one.
func chaosSeed(t testing.TB, k Kind, cached bool) uint64 {
	if s := os.Getenv(chaosSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", chaosSeedEnv, s, err)
		}
		return n
	}
	seed := uint64(20250101)
	for _, c := range k.Name {
		seed = seed*31 + uint64(c)
	}
	if cached {
		seed++
	}
	return seed
}

// thChaos runs chaosPerHost workers on each host for dur while killing
// them, then checks the log. With cached, both mounts keep sshfs's default
// caches (about 20 s), like NFS clients with attribute caching.
func thChaos(t *testing.T, k Kind, cached bool, dur time.Duration) {
	thChaosMode(t, k, cached, false, dur)
}

// thChaosMode is thChaos; with rw, the workers play RoleChaosRW (each
// hold shared or exclusive at random). The same checker reads both logs.
func thChaosMode(t *testing.T, k Kind, cached, rw bool, dur time.Duration) {
	c := sshfstest.Start(t, sshfstest.Options{Cached: cached})
	hostA := thHostname(t)
	seed := chaosSeed(t, k, cached)
	role := RoleChaos
	if rw {
		role = RoleChaosRW
		if os.Getenv(chaosSeedEnv) == "" {
			seed += 2
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t.Logf("chaos: seed %d (%s overrides), kills for %v, %d workers per host, lease %v, cached=%v",
		seed, chaosSeedEnv, dur, chaosPerHost, chaosLease, cached)

	// How long progress may take after a kill before the test fails. With
	// caching, a host may keep seeing a released lock for ~20 s.
	progressTimeout := 20 * time.Second
	if cached {
		progressTimeout = 60 * time.Second
	}

	cl := &chaosLog{path: filepath.Join(c.Export, "log")}
	spec := func(onB bool) HelperSpec {
		m := c.MountA
		if onB {
			m = c.MountB
		}
		return HelperSpec{
			Role:    role,
			Path:    filepath.Join(m, "x.lock"),
			Counter: filepath.Join(m, "counter"),
			// The log is the test's record of events, not state under
			// test: it is appended to directly (both "hosts" are this
			// machine), because O_APPEND through sshfs takes the offset
			// from each client's idea of the size, and concurrent
			// appenders (a breaker and a killed worker, say) overwrote
			// each other's lines.
			Log:        filepath.Join(c.Export, "log"),
			StaleAfter: chaosLease,
			Timeout:    10 * time.Minute, // the test's own deadlines fire first
		}
	}
	workers := make([]*chaosWorker, 2*chaosPerHost)
	byID := map[string]*chaosWorker{}
	incarnation := 0
	launch := func(slot int) *chaosWorker {
		incarnation++
		w := &chaosWorker{slot: slot, onB: slot >= chaosPerHost, host: hostA}
		cmd, letter := c.CommandA, "a"
		if w.onB {
			cmd, letter, w.host = c.CommandB, "b", c.HostB
		}
		w.label = fmt.Sprintf("%s%d.%d", letter, slot%chaosPerHost, incarnation)
		w.h = thStart(t, w.label, cmd, k, spec(w.onB))
		return w
	}
	ready := func(w *chaosWorker) {
		w.pid, _ = procReady(t, w.h)
		if byID[w.id()] != nil {
			t.Fatalf("workers %s and %s both are %s", byID[w.id()].label, w.label, w.id())
		}
		byID[w.id()] = w
		workers[w.slot] = w
	}
	// healthy reports a worker that exited, or said anything (an error),
	// on its own.
	healthy := func() error {
		for _, w := range workers {
			if w.killed {
				continue
			}
			if p := w.h.Pending(); len(p) > 0 || w.h.Exited() {
				return fmt.Errorf("worker %s (%s) failed: %s", w.label, w.id(), w.h.describe())
			}
		}
		return nil
	}
	// waitFor waits for a log line of kind ("begin" or "end") of a hold
	// that began after at, by a host other than notHost (if set), among
	// the lines from index from on.
	waitFor := func(from int, at time.Time, kind, notHost, what string) {
		t.Helper()
		procPollUntil(t, progressTimeout, what, func() (bool, error) {
			if err := healthy(); err != nil {
				return false, err
			}
			if err := cl.update(); err != nil {
				return false, err
			}
			for _, s := range cl.lines[from:] {
				r, err := parseChaosLine(0, s)
				if err == nil && r.kind == kind && r.t0 > at.UnixNano() && r.host != notHost {
					return true, nil
				}
			}
			return false, nil
		})
	}
	// holder returns the live worker the record at the lock path names.
	holder := func() *chaosWorker {
		data, err := os.ReadFile(k.RecordPath(filepath.Join(c.Export, "x.lock")))
		if err != nil {
			return nil
		}
		o, err := stale.Parse(data)
		if err != nil {
			return nil
		}
		if w := byID[o.Host+"/"+strconv.Itoa(o.PID)]; w != nil && workers[w.slot] == w {
			return w
		}
		return nil
	}

	for slot := range workers {
		workers[slot] = launch(slot)
	}
	for _, w := range workers {
		ready(w)
	}
	began := time.Now()
	for _, w := range workers {
		w.h.Send(t, "start")
	}

	// The killer runs here, on the test's goroutine (so that it may fail
	// the test), every 0.3-1 s until dur has passed.
	var events []*chaosEvent
	killed := map[string]time.Time{} // worker id -> when it was killed
	for time.Since(began) < dur {
		// The kill schedule, not a synchronisation.
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(700*time.Millisecond))))
		if err := healthy(); err != nil {
			t.Fatal(err)
		}
		if err := cl.update(); err != nil {
			t.Fatal(err)
		}
		ev := &chaosEvent{}
		h := holder()
		switch r := rng.Float64(); {
		case r < 0.25:
			// A host crash: every worker of one host (the holder's, if
			// any) dies at once; the host stays down until the other
			// host has taken the lock, so that a lock held there must be
			// reclaimed across hosts (by its lease).
			ev.crash = true
			onB := rng.IntN(2) == 1
			if h != nil {
				onB = h.onB
			}
			for _, w := range workers {
				if w.onB == onB {
					ev.victims = append(ev.victims, w)
				}
			}
		case r < 0.65 && h != nil:
			ev.targeted = true
			ev.victims = []*chaosWorker{h}
		default:
			ev.victims = []*chaosWorker{workers[rng.IntN(len(workers))]}
		}
		from := len(cl.lines)
		ev.at = time.Now()
		for _, v := range ev.victims {
			v.killed = true
			if err := v.h.kill(); err != nil {
				t.Fatalf("killing worker %s: %v", v.label, err)
			}
		}
		for _, v := range ev.victims {
			if err := v.h.Wait(t); err == nil {
				t.Fatalf("worker %s exited successfully before it was killed\n%s", v.label, v.h.describe())
			}
			killed[v.id()] = ev.at
		}
		events = append(events, ev)
		if ev.crash {
			other := ev.victims[0].host
			waitFor(from, ev.at, "begin", other, fmt.Sprintf("the other host to take the lock after %s", ev))
		}
		var fresh []*chaosWorker
		for _, v := range ev.victims {
			fresh = append(fresh, launch(v.slot))
		}
		for _, w := range fresh {
			ready(w)
			w.h.Send(t, "start")
		}
	}
	killing := time.Since(began)

	// Progress after the last kill: a hold that began after it, completed.
	if n := len(events); n > 0 {
		waitFor(0, events[n-1].at, "end", "", "a completed hold after the last kill")
	}
	for _, w := range workers {
		w.h.CloseStdin()
	}
	for _, w := range workers {
		w.h.Expect(t, "done")
		w.h.WaitOK(t)
	}
	total := time.Since(began)
	if err := cl.update(); err != nil {
		t.Fatal(err)
	}
	if len(cl.partial) > 0 {
		t.Errorf("log ends with a partial line %q", cl.partial)
	}
	counterData, err := os.ReadFile(filepath.Join(c.Export, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	counter, err := strconv.ParseUint(strings.TrimSpace(string(counterData)), 10, 64)
	if err != nil || len(counterData) != procChaosCounterWidth+1 {
		t.Fatalf("counter file holds %q: torn or foreign write", counterData)
	}

	failed := chaosCheck(t, cl.lines, events, killed, counter, hostA, c.HostB, total, killing)
	if failed || t.Failed() {
		for _, ev := range events {
			t.Logf("event: %s", ev)
		}
		if dir := os.Getenv(chaosKeepEnv); dir != "" {
			name := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(t.Name())+".log")
			if err := os.WriteFile(name, []byte(strings.Join(cl.lines, "\n")+"\n"), 0o644); err != nil {
				t.Logf("keeping the log: %v", err)
			} else {
				t.Logf("log kept in %s", name)
			}
		}
	}
}

// chaosStat collects durations.
type chaosStat []time.Duration

func (s chaosStat) String() string {
	if len(s) == 0 {
		return "n=0"
	}
	d := slices.Clone(s)
	slices.Sort(d)
	return fmt.Sprintf("n=%d median %v max %v", len(d), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
}
