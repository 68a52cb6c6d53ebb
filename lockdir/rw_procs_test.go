package lockdir_test

// Shared/exclusive locks across real processes, under -race in CI. The
// helpers are locktest's (HelperSpec with Shared for a reader): a reader
// and a writer differ only in that flag.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/locktest"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/stale"
)

// Lock kinds in a loop helper's log (locktest.RoleLoop).
const (
	kindReader = "r" // RLock
	kindWriter = "w" // Lock
)

// startHelper starts a helper playing s and takes its "ready" line; it
// returns the helper and its PID.
func startHelper(t *testing.T, label string, s locktest.HelperSpec) (*locktest.Helper, int) {
	t.Helper()
	h := locktest.StartHelperSpec(t, label, kind, s)
	if pid := h.Ready(t); pid != h.Cmd.Process.Pid {
		t.Fatalf("helper %s: ready line names PID %d, started PID %d", label, pid, h.Cmd.Process.Pid)
	}
	return h, h.Cmd.Process.Pid
}

// loopSpec is a RoleLoop helper's spec: a reader (shared) or a writer.
func loopSpec(k string, path, log string, iters int, hold time.Duration) locktest.HelperSpec {
	return locktest.HelperSpec{Role: locktest.RoleLoop, Path: path, Log: log, Shared: k == kindReader,
		Iterations: iters, Hold: hold, PollMax: 5 * time.Millisecond}
}

// rwEvent is one line of a loop helper's O_APPEND log: "WHAT KIND PID TOKEN NS".
type rwEvent struct {
	what  string // begin, end, wait, queued
	kind  string // kindReader, kindWriter
	pid   int
	token uint64
	ns    int64
}

func (e rwEvent) String() string {
	return fmt.Sprintf("%s %s pid %d token %d", e.what, e.kind, e.pid, e.token)
}

// readLines returns the lines of a helpers' log.
func readLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func readEvents(t *testing.T, name string) []rwEvent {
	t.Helper()
	var evs []rwEvent
	for _, l := range readLines(t, name) {
		var e rwEvent
		if _, err := fmt.Sscanf(l, "%s %s %d %d %d", &e.what, &e.kind, &e.pid, &e.token, &e.ns); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// lockedPIDs returns the PIDs an error matching ErrLocked names, checking
// that it is an *fs.PathError for path wrapping a *LockedError.
func lockedPIDs(t *testing.T, err error, path string) []int {
	t.Helper()
	if !errors.Is(err, dotlock.ErrLocked) {
		t.Fatalf("got %v, want an error matching ErrLocked", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("error %v is not an *fs.PathError for %s", err, path)
	}
	var le *dotlock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error %v does not wrap a *LockedError", err)
	}
	var pids []int
	for _, o := range le.Owners {
		pids = append(pids, o.PID)
	}
	slices.Sort(pids)
	return pids
}

func sortedKeys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func parseToken(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("bad token %q", s)
	}
	return n
}

// dumpOnFailure logs the lock's state on disk if the test fails.
func dumpOnFailure(t *testing.T, path string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("on disk for %s:\n%s", path, locktest.DescribeLock(path))
		}
	})
}

// TestRWReadersOverlap: readers in several processes hold together. The
// proof of overlap is that every reader reports holding before any is told
// to release; meanwhile another reader joins at once and writers are
// refused with errors naming exactly the readers.
func TestRWReadersOverlap(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	logName := filepath.Join(dir, "log")
	const n = 4
	procs := make([]*locktest.Helper, n)
	pids := map[int]bool{}
	for i := range procs {
		var pid int
		procs[i], pid = startHelper(t, fmt.Sprintf("reader%d", i), locktest.HelperSpec{
			Role: locktest.RoleHold, Path: path, Log: logName, Shared: true, PollMax: 10 * time.Millisecond})
		pids[pid] = true
	}
	tokens := map[uint64]bool{}
	var maxToken uint64
	for _, p := range procs {
		tok := parseToken(t, p.Expect(t, "held")[1])
		if tokens[tok] {
			t.Errorf("token %d issued to two readers", tok)
		}
		tokens[tok] = true
		maxToken = max(maxToken, tok)
	}
	// All n hold now: none has been told to release.
	lines := readLines(t, logName)
	if len(lines) != n {
		t.Fatalf("log has %d lines, want %d acquisitions: %q", len(lines), n, lines)
	}
	for _, l := range lines {
		var tok uint64
		var pid int
		if _, err := fmt.Sscanf(l, "acquire %d %d", &tok, &pid); err != nil || !pids[pid] || !tokens[tok] {
			t.Errorf("unexpected log line %q", l)
		}
	}

	rw, err := lockdir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := rw.Owner(); err != nil || o.Mode != stale.ModeShared {
		t.Errorf("Owner() = %+v, %v; want the anchor of a shared group", o, err)
	}
	rs, err := rw.Readers()
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range rs {
		got = append(got, r.PID)
		if !tokens[r.Token] {
			t.Errorf("reader record %v carries a token no reader reported", r)
		}
	}
	slices.Sort(got)
	if want := sortedKeys(pids); !slices.Equal(got, want) {
		t.Errorf("Readers() PIDs = %v, want %v", got, want)
	}

	// A further reader joins at once.
	if err := rw.TryRLock(); err != nil {
		t.Fatalf("TryRLock while %d readers hold: %v", n, err)
	}
	if tok := rw.Token(); tok <= maxToken || tokens[tok] {
		t.Errorf("TryRLock's token %d, want a new one above %d", tok, maxToken)
	}
	if err := rw.RUnlock(); err != nil {
		t.Fatal(err)
	}

	// Writers — a handle that also reads, and a plain one — are refused, naming the readers.
	plain, err := lockdir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() error{"shared.TryLock": rw.TryLock, "Lock.TryLock": plain.TryLock} {
		err := try()
		if err == nil {
			t.Fatalf("%s succeeded while %d readers hold", name, n)
		}
		if got, want := lockedPIDs(t, err, path), sortedKeys(pids); !slices.Equal(got, want) {
			t.Errorf("%s: error names PIDs %v, want the readers %v (%v)", name, got, want, err)
		}
	}

	for _, p := range procs {
		p.CloseStdin() // release
		p.Expect(t, "released")
		p.Done(t)
	}
	if err := plain.TryLock(); err != nil {
		t.Fatalf("TryLock after the readers left: %v", err)
	}
	if tok := plain.Token(); tok <= maxToken {
		t.Errorf("writer token %d, want above the readers' %d", tok, maxToken)
	}
	if err := plain.Unlock(); err != nil {
		t.Fatal(err)
	}
	for _, leftover := range []string{path, path + ".queue", path + ".break"} {
		if _, err := os.Lstat(leftover); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", leftover, err)
		}
	}
}

// holdInterval is one hold, from its "begin" to its "end" log line.
type holdInterval struct {
	kind   string
	pid    int
	token  uint64
	b, e   int64 // UnixNano
	bi, ei int   // log line indexes
}

func (h holdInterval) writer() bool { return h.kind != kindReader }

func (h holdInterval) String() string {
	return fmt.Sprintf("%s pid %d token %d (lines %d-%d)", h.kind, h.pid, h.token, h.bi, h.ei)
}

// intervals pairs begin and end lines, checking that each hold has a
// token of its own.
func intervals(t *testing.T, evs []rwEvent) []holdInterval {
	t.Helper()
	type key struct {
		pid   int
		token uint64
	}
	open := map[key]int{}
	seen := map[uint64]rwEvent{}
	var out []holdInterval
	for i, e := range evs {
		switch e.what {
		case "begin":
			if prev, ok := seen[e.token]; ok {
				t.Errorf("token %d issued twice: %v and %v", e.token, prev, e)
			}
			seen[e.token] = e
			open[key{e.pid, e.token}] = i
		case "end":
			k := key{e.pid, e.token}
			bi, ok := open[k]
			if !ok {
				t.Fatalf("log line %d: %v without its begin", i, e)
			}
			delete(open, k)
			out = append(out, holdInterval{kind: e.kind, pid: e.pid, token: e.token, b: evs[bi].ns, e: e.ns, bi: bi, ei: i})
		}
	}
	if len(open) > 0 {
		t.Fatalf("holds without an end: %v", open)
	}
	return out
}

// TestRWWritersExclude: readers and writers in several processes take turns; every hold logs
// its begin and end to an O_APPEND log. No writer's hold overlaps any
// other hold, by log order and by clock; fencing tokens order the holds;
// readers did overlap.
func TestRWWritersExclude(t *testing.T) {
	if runtime.GOOS == "windows" {
		// Under Wine, with two test runs at once, 2 to 4 runs in 100: a
		// process stops making progress (a holder in its 4 ms hold, or a
		// releaser under the breaker guard; its heartbeat stops too) and
		// the others wait for it, since it lives. Neither a goroutine
		// waking every 50 ms in every process nor never blocking in
		// LockFileEx (the log's lock) made it rarer. As TestRWFileConsistency.
		t.Skip("a helper stalls 2 to 4 runs in 100 under Wine (a process stops making progress; cause not found yet): not run on Windows until it is")
	}
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	logName := filepath.Join(dir, "log")
	const readerIters, writerIters = 12, 8
	specs := []locktest.HelperSpec{
		loopSpec(kindReader, path, logName, readerIters, 4*time.Millisecond),
		loopSpec(kindReader, path, logName, readerIters, 4*time.Millisecond),
		loopSpec(kindReader, path, logName, readerIters, 4*time.Millisecond),
		loopSpec(kindWriter, path, logName, writerIters, 2*time.Millisecond),
		loopSpec(kindWriter, path, logName, writerIters, 2*time.Millisecond),
	}
	var procs []*locktest.Helper
	for i, s := range specs {
		label := fmt.Sprintf("writer%d", i)
		if s.Shared {
			label = fmt.Sprintf("reader%d", i)
		}
		h, _ := startHelper(t, label, s)
		procs = append(procs, h)
	}
	readers, writers := procs[:3], procs[3:]
	// Sharing, for certain: this process holds the lock shared, its hold
	// logged like a helper's, until a reader helper has joined it; only
	// then do the writers start. (Left to chance, no two reader holds
	// overlapped in 4 of about 140 runs under Wine: each reader, queued
	// between writers, was let in alone.)
	mine, err := lockdir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), locktest.HelperTimeout)
	defer cancel()
	if err := mine.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(logName, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	logMine := func(what string) {
		if err := locktest.AppendLine(logf, fmt.Sprintf("%s %s %d %d %d", what, kindReader, os.Getpid(), mine.Token(), time.Now().UnixNano())); err != nil {
			t.Fatal(err)
		}
	}
	logMine("begin")
	for _, p := range readers {
		p.Send(t, "start")
	}
	readers[0].Expect(t, "looping") // its first hold has begun, inside ours
	logMine("end")
	if err := mine.RUnlock(); err != nil {
		t.Fatal(err)
	}
	for _, p := range writers {
		p.Send(t, "start")
	}
	for i, p := range procs {
		if i != 0 {
			p.Expect(t, "looping")
		}
		if got, want := p.Expect(t, "done")[1], strconv.Itoa(specs[i].Iterations); got != want {
			t.Errorf("helper %s did %s iterations, want %s", p.Label, got, want)
		}
		p.CloseStdin()
		p.Done(t)
	}

	evs := readEvents(t, logName)
	ivs := intervals(t, evs)
	if want := 3*readerIters + 2*writerIters + 1; len(ivs) != want { // +1: ours
		t.Fatalf("%d holds logged, want %d", len(ivs), want)
	}
	var lastWriterToken uint64
	for _, w := range ivs {
		if !w.writer() {
			continue
		}
		// By log order: no other hold begins or ends between a writer's
		// begin and its end.
		for _, e := range evs[w.bi+1 : w.ei] {
			if e.what == "begin" || e.what == "end" {
				t.Errorf("writer hold %v: %v logged inside it", w, e)
			}
		}
		// By clock: no other hold's interval intersects it.
		for _, o := range ivs {
			if o != w && o.b < w.e && w.b < o.e {
				t.Errorf("writer hold %v overlaps %v in time", w, o)
			}
		}
		// Fencing: holds begun before it have smaller tokens, after it larger.
		for i, e := range evs {
			if e.what != "begin" || i == w.bi {
				continue
			}
			if (i < w.bi) != (e.token < w.token) {
				t.Errorf("token order: %v at line %d, writer %v at line %d", e, i, w, w.bi)
			}
		}
		if w.token <= lastWriterToken {
			t.Errorf("writer tokens not increasing in log order: %d after %d", w.token, lastWriterToken)
		}
		lastWriterToken = w.token
	}
	// Readers overlapped (by log order: one began before another ended).
	overlaps := 0
	for i, r := range ivs {
		for _, o := range ivs[i+1:] {
			if !r.writer() && !o.writer() && r.pid != o.pid && o.bi < r.ei && r.bi < o.ei {
				overlaps++
			}
		}
	}
	t.Logf("%d holds; %d pairs of reader holds overlapped", len(ivs), overlaps)
	if overlaps == 0 {
		t.Errorf("no two reader holds overlapped: the run did not exercise sharing")
	}
}

// starvationRounds analyses a log in which one helper (kind waiterKind)
// took the lock in rounds while a stream of the other kind held it. For
// each round in which the waiter was seen in the queue, it counts the
// other kind's holds begun (in log order) after the waiter was queued and
// before its own hold began.
func starvationRounds(t *testing.T, evs []rwEvent, waiterKind string) (counts []int, unqueued int) {
	t.Helper()
	queued := -1
	for i, e := range evs {
		if e.kind != waiterKind {
			continue
		}
		switch e.what {
		case "queued":
			queued = i
		case "begin":
			if queued < 0 {
				unqueued++
				continue
			}
			n := 0
			for _, o := range evs[queued:i] {
				if o.what == "begin" && o.kind != waiterKind {
					n++
				}
			}
			counts = append(counts, n)
			queued = -1
		}
	}
	return counts, unqueued
}

// TestRWWriterNotStarved: a stream of readers in three processes keeps the
// lock held in shared mode; a writer waits. Once its queue record exists
// no reader joins (S1 refuses while a writer queues) and, when the group
// dissolves, the writer's turn comes before the queued readers'. A reader
// that joined before the writer queued may log its begin only after the
// test's observer saw the writer queued — at most one such per reader
// process — so the bound asserted is: reader holds begun between the
// writer being seen queued and its hold beginning <= number of reader
// processes.
func TestRWWriterNotStarved(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	logName := filepath.Join(dir, "log")
	const readers, rounds = 3, 4
	var rprocs []*locktest.Helper
	for i := range readers {
		h, _ := startHelper(t, fmt.Sprintf("reader%d", i), loopSpec(kindReader, path, logName, 0, 15*time.Millisecond))
		rprocs = append(rprocs, h)
	}
	ws := loopSpec(kindWriter, path, logName, rounds, 2*time.Millisecond)
	ws.WatchQueue, ws.WaitReaders = true, true
	w, _ := startHelper(t, "writer", ws)
	for _, p := range rprocs {
		p.Send(t, "start")
	}
	for _, p := range rprocs {
		p.Expect(t, "looping")
	}
	start := time.Now()
	w.Send(t, "start")
	w.Expect(t, "looping")
	w.Expect(t, "done")
	t.Logf("writer did %d rounds against the reader stream in %v", rounds, time.Since(start))
	w.CloseStdin()
	w.Done(t)
	for _, p := range rprocs {
		p.CloseStdin()
		p.Expect(t, "done")
		p.Done(t)
	}

	evs := readEvents(t, logName)
	counts, unqueued := starvationRounds(t, evs, kindWriter)
	t.Logf("reader holds begun while the writer was queued, per round: %v (%d rounds without queueing)", counts, unqueued)
	if len(counts) < 2 {
		t.Fatalf("the writer was seen queued in %d of %d rounds; the test needs it to wait", len(counts), rounds)
	}
	for i, n := range counts {
		if n > readers {
			t.Errorf("round %d: %d reader holds began while the writer was queued; the protocol allows at most %d", i, n, readers)
		}
	}
}

// TestRWReaderNotStarved is the converse: a stream of writers (two
// processes) and a reader that waits. A writer that releases
// hands the lock to the queued readers (phases alternate), so after the
// reader is queued at most the holder then and writers that barged past a
// queue they had not yet seen (at most one per writer process) go first.
func TestRWReaderNotStarved(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	logName := filepath.Join(dir, "log")
	const rounds = 4
	var wprocs []*locktest.Helper
	for i := range 2 {
		h, _ := startHelper(t, fmt.Sprintf("writer%d", i), loopSpec(kindWriter, path, logName, 0, 10*time.Millisecond))
		wprocs = append(wprocs, h)
	}
	rs := loopSpec(kindReader, path, logName, rounds, 2*time.Millisecond)
	rs.WatchQueue = true
	r, _ := startHelper(t, "reader", rs)
	for _, p := range wprocs {
		p.Send(t, "start")
	}
	for _, p := range wprocs {
		p.Expect(t, "looping")
	}
	r.Send(t, "start")
	r.Expect(t, "looping")
	r.Expect(t, "done")
	r.CloseStdin()
	r.Done(t)
	for _, p := range wprocs {
		p.CloseStdin()
		p.Expect(t, "done")
		p.Done(t)
	}

	evs := readEvents(t, logName)
	counts, unqueued := starvationRounds(t, evs, kindReader)
	t.Logf("writer holds begun while the reader was queued, per round: %v (%d rounds without queueing)", counts, unqueued)
	if len(counts) < 2 {
		t.Fatalf("the reader was seen queued in %d of %d rounds; the test needs it to wait", len(counts), rounds)
	}
	for i, n := range counts {
		if n > len(wprocs) {
			t.Errorf("round %d: %d writer holds began while the reader was queued; the protocol allows at most %d", i, n, len(wprocs))
		}
	}
}

// TestRWKilledReaderReclaimed: a SIGKILLed reader's shared hold is removed
// by a writer through the PID check alone (its lease is an hour), and the
// writer's token follows the reader's.
func TestRWKilledReaderReclaimed(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	r, rpid := startHelper(t, "reader", locktest.HelperSpec{Role: locktest.RoleHold, Path: path, Shared: true})
	rtok := parseToken(t, r.Expect(t, "held")[1])

	w, err := lockdir.New(path, dotlock.WithStaleAfter(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := lockedPIDs(t, w.TryLock(), path); !slices.Equal(got, []int{rpid}) {
		t.Fatalf("TryLock while the reader lives names %v, want [%d]", got, rpid)
	}
	r.Kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.Lock(ctx); err != nil {
		t.Fatalf("Lock after the reader was killed: %v", err)
	}
	t.Logf("writer took the lock %v after the reader was killed", time.Since(start))
	if got := w.Token(); got <= rtok {
		t.Errorf("writer token %d, want above the killed reader's %d", got, rtok)
	}
	if rs, err := w.Readers(); err != nil || len(rs) != 0 {
		t.Errorf("Readers() while the writer holds = %v, %v", rs, err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRWKilledWriterReclaimed: a reader waiting for a writer gets the lock
// once the writer is SIGKILLed, through the PID check alone.
func TestRWKilledWriterReclaimed(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	wp, wpid := startHelper(t, "writer", locktest.HelperSpec{Role: locktest.RoleHold, Path: path})
	wtok := parseToken(t, wp.Expect(t, "held")[1])

	waiting := make(chan *dotlock.LockedError, 1)
	r, err := lockdir.New(path, dotlock.WithStaleAfter(time.Hour), dotlock.WithOnWait(func(e *dotlock.LockedError) {
		select {
		case waiting <- e:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := lockedPIDs(t, r.TryRLock(), path); !slices.Equal(got, []int{wpid}) {
		t.Fatalf("TryRLock while the writer lives names %v, want [%d]", got, wpid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.RLock(ctx) }()
	select {
	case e := <-waiting:
		if len(e.Owners) != 1 || e.Owners[0].PID != wpid {
			t.Errorf("waiting reader told of %v, want the writer %d", e, wpid)
		}
	case err := <-done:
		t.Fatalf("RLock returned %v while the writer holds", err)
	}
	wp.Kill(t)
	start := time.Now()
	if err := <-done; err != nil {
		t.Fatalf("RLock after the writer was killed: %v", err)
	}
	t.Logf("reader took the lock %v after the writer was killed", time.Since(start))
	if got := r.Token(); got <= wtok {
		t.Errorf("reader token %d, want above the killed writer's %d", got, wtok)
	}
	if err := r.RUnlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRWLiveReaderNeverRemoved: a reader that lives — even stopped, its
// heartbeat frozen far past a writer's short lease — is never removed. The
// writer waits and its TryLock names the reader; the reader's RUnlock
// succeeds once it runs again.
func TestRWLiveReaderNeverRemoved(t *testing.T) {
	if !locktest.CanStop {
		t.Skip("SIGSTOP is not available on this system: a reader cannot be stopped")
	}
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	dumpOnFailure(t, path)
	r, rpid := startHelper(t, "reader", locktest.HelperSpec{Role: locktest.RoleHold, Path: path, Shared: true, StaleAfter: 200 * time.Millisecond})
	rtok := parseToken(t, r.Expect(t, "held")[1])
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			r.Cont()
		}
	}()

	w, err := lockdir.New(path, dotlock.WithStaleAfter(100*time.Millisecond), dotlock.WithPoll(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now() // before the deadline is set, which counts from then
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := w.Lock(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Lock while a stopped reader holds = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("Lock gave up after %v, before its deadline", d)
	}
	if got := lockedPIDs(t, w.TryLock(), path); !slices.Equal(got, []int{rpid}) {
		t.Errorf("TryLock names %v, want the stopped reader [%d]", got, rpid)
	}
	rs, err := w.Readers()
	if err != nil || len(rs) != 1 || rs[0].PID != rpid || rs[0].Token != rtok {
		t.Errorf("Readers() = %v, %v; want the stopped reader's record", rs, err)
	}
	if _, err := os.Lstat(path + ".queue"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the writer that gave up left its queue behind (%v)", err)
	}

	if err := r.Cont(); err != nil {
		t.Fatal(err)
	}
	stopped = false
	r.CloseStdin() // release
	r.Expect(t, "released")
	r.Done(t)
	if err := w.TryLock(); err != nil {
		t.Fatalf("TryLock after the reader left: %v", err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRWFileConsistency: several processes read-modify-write one data file
// — by Transform (replace whole) and by OpenWrite in place (truncate, then
// many small writes, so a torn file is there to be seen if exclusion
// failed) — and read it with OpenRead and ReadFile, checking every read is
// whole. The final counter counts every increment.
func TestRWFileConsistency(t *testing.T) {
	if runtime.GOOS == "windows" {
		// Under Wine, with two test runs at once, about 1 run in 30: a
		// helper stops making progress (one was seen frozen inside
		// DeleteFile, its goroutine that dumped stacks every 2 s stopped
		// too) and the others wait for it, since it lives. With such a
		// goroutine in every helper and the test, 40 runs did not stall:
		// a timer wake-up lost under Wine? Not known; as the rwfile example.
		t.Skip("a helper stalls about 1 run in 30 under Wine (a process stops making progress; cause not found yet): not run on Windows until it is")
	}
	dir := testdir.New(t)
	data := filepath.Join(dir, "data.json")
	dumpOnFailure(t, lockdir.LockPath(data))
	if err := os.WriteFile(data, locktest.DataContent(0), 0o644); err != nil {
		t.Fatal(err)
	}
	const procs, iters = 4, 16 // each: 4 Transform, 4 in place, 8 reads
	var ps []*locktest.Helper
	for i := range procs {
		h, _ := startHelper(t, fmt.Sprintf("file%d", i), locktest.HelperSpec{
			Role: locktest.RoleFile, Data: data, Iterations: iters, PollMax: 5 * time.Millisecond})
		ps = append(ps, h)
	}
	// The test reads too, locked (must always be whole) and unlocked (for
	// the record: shows the writers do expose torn states).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lockedReads, unlockedReads, torn int
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := lockdir.ReadFile(ctx, data, dotlock.WithPoll(time.Millisecond, 5*time.Millisecond))
			if err == nil {
				_, err = locktest.ParseData(b)
			}
			if err != nil {
				readErr = err
				return
			}
			lockedReads++
			if b, err := os.ReadFile(data); err == nil {
				unlockedReads++
				if _, err := locktest.ParseData(b); err != nil {
					torn++
				}
			}
		}
	}()
	for _, p := range ps {
		p.Send(t, "start")
	}
	for _, p := range ps {
		f := p.Expect(t, "done")
		if len(f) != 3 || f[1] != strconv.Itoa(iters/2) || f[2] != strconv.Itoa(iters/2) {
			t.Errorf("helper %s: %v", p.Label, f)
		}
		p.CloseStdin()
		p.Done(t)
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Errorf("a locked read by the test: %v", readErr)
	}
	t.Logf("test's own reads: %d locked, all whole; %d unlocked, %d of them torn", lockedReads, unlockedReads, torn)
	b, err := lockdir.ReadFile(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	n, err := locktest.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := procs * iters / 2; n != want {
		t.Errorf("final counter %d, want %d (lost updates)", n, want)
	}
	// Nothing but the data file and its last-record slot remains.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if name := e.Name(); name != "data.json" && name != "data.json.lock.last" {
			t.Errorf("left behind: %s", name)
		}
	}
}
