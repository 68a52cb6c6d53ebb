package locktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// The cross-process subtests. Each runs in its own temporary directory.

// procQuick bounds how long an acquisition that needs no waiting (the holder is
// provably dead on this host) may take. It is far below every lease and
// grace period involved (StaleAfter 1h, Grace 5s), so an acquisition within
// it was freed by the process-table check alone.
const procQuick = 3 * time.Second

// procReady takes a helper's "ready PID STARTID" line.
func procReady(t testing.TB, h *Helper) (pid int, startID string) {
	t.Helper()
	f := h.Expect(t, "ready")
	if len(f) < 2 {
		t.Fatalf("helper %s: bad ready line %q", h.Label, f)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("helper %s: bad ready line %q", h.Label, f)
	}
	if len(f) > 2 {
		startID = f[2]
	}
	return pid, startID
}

// procHolding takes a helper's "held TOKEN UUID" or "won TOKEN UUID" line.
func procHolding(t testing.TB, h *Helper, word string) (token uint64, uuid string) {
	t.Helper()
	f := h.Expect(t, word)
	if len(f) != 3 {
		t.Fatalf("helper %s: bad %s line %q", h.Label, word, f)
	}
	token, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || token == 0 {
		t.Fatalf("helper %s: bad token in %q", h.Label, f)
	}
	return token, f[2]
}

// procReleased closes h's stdin and checks that it released cleanly and exited.
func procReleased(t testing.TB, h *Helper) {
	t.Helper()
	h.CloseStdin()
	h.Expect(t, "released")
	h.WaitOK(t)
}

// procRecordAt returns the raw record at the lock path and its parse.
func procRecordAt(t testing.TB, k Kind, path string) ([]byte, stale.Owner) {
	t.Helper()
	data, err := os.ReadFile(k.RecordPath(path))
	if err != nil {
		t.Fatalf("reading the record at the lock path: %v", err)
	}
	o, err := stale.Parse(data)
	if err != nil {
		t.Fatalf("record at the lock path: %v\n%q", err, data)
	}
	return data, o
}

func procNewLock(t testing.TB, k Kind, path string, opts ...lockcore.Option) Locker {
	t.Helper()
	l, err := k.New(path, opts...)
	if err != nil {
		t.Fatalf("New(%s): %v", path, err)
	}
	return l
}

// procPollUntil waits for a condition that no helper announces (a process
// state seen in /proc), re-checking it with a short backoff.
func procPollUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// procRunCounters starts procs counter helpers with g goroutines of n
// iterations each, starts them together, and checks that no update was
// lost and that every hold got a greater token than the one before.
func procRunCounters(t *testing.T, k Kind, procs, g, n int) {
	dir := testdir.New(t)
	spec := HelperSpec{
		Role:       RoleCounter,
		Path:       filepath.Join(dir, "lock"),
		Counter:    filepath.Join(dir, "counter"),
		Log:        filepath.Join(dir, "log"),
		Iterations: n,
		Goroutines: g,
		// Waiters poll often, so that they race the holder at each
		// release instead of letting it take the lock back every time.
		PollMax: 2 * time.Millisecond,
	}
	hs := make([]*Helper, procs)
	pids := map[int]bool{}
	for i := range hs {
		hs[i] = StartHelperSpec(t, fmt.Sprintf("counter%d", i), k, spec)
	}
	for _, h := range hs {
		pid, _ := procReady(t, h)
		pids[pid] = true
	}
	start := time.Now()
	for _, h := range hs {
		h.Send(t, "start")
	}
	for _, h := range hs {
		f := h.Expect(t, "done")
		if len(f) != 2 || f[1] != strconv.Itoa(g*n) {
			t.Errorf("helper %s: %q, want done %d", h.Label, f, g*n)
		}
		h.WaitOK(t)
	}
	t.Logf("%d processes x %d goroutines x %d iterations: %v", procs, g, n, time.Since(start).Round(time.Millisecond))

	want := map[int]int{}
	for pid := range pids {
		want[pid] = g * n
	}
	procCheckCounter(t, spec.Counter, spec.Log, want)
}

// procCheckCounter checks a counter run (RoleCounter): the counter file
// holds the number of holds (no update lost), and the log — one line "PID
// TOKEN VALUE" per hold, appended while holding — has tokens increasing,
// values 1, 2, 3... (no update lost or repeated), and want[pid] holds for
// each helper PID and none from any other.
func procCheckCounter(t *testing.T, counter, logFile string, want map[int]int) {
	t.Helper()
	total := 0
	for _, n := range want {
		total += n
	}
	data, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != strconv.Itoa(total) {
		t.Errorf("counter = %s, want %d: %d updates lost", got, total, total-procAtoi(got, 0))
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	if len(lines) != total {
		t.Errorf("log has %d lines, want %d", len(lines), total)
	}
	complain := procLimit(t)
	perPID := map[int]int{}
	var last uint64
	handovers, prev := 0, 0
	for i, line := range lines {
		var pid int
		var tok uint64
		var v int
		if _, err := fmt.Sscanf(line, "%d %d %d", &pid, &tok, &v); err != nil {
			t.Fatalf("log line %d: %q: %v", i+1, line, err)
		}
		if want[pid] == 0 {
			complain("log line %d: %q: pid %d is not a helper's", i+1, line, pid)
		}
		perPID[pid]++
		if prev != 0 && pid != prev {
			handovers++
		}
		prev = pid
		if tok <= last {
			complain("log line %d: %q: token %d after token %d: tokens must increase", i+1, line, tok, last)
		}
		last = tok
		if v != i+1 {
			complain("log line %d: %q: hold wrote counter value %d, want %d (lost or repeated update)", i+1, line, v, i+1)
		}
	}
	t.Logf("the lock passed between processes %d times", handovers)
	for pid, w := range want {
		if perPID[pid] != w {
			t.Errorf("pid %d logged %d holds, want %d", pid, perPID[pid], w)
		}
	}
}

// procLimit returns a function that reports problems through t.Errorf,
// and stops the test at the tenth.
func procLimit(t testing.TB) func(format string, args ...any) {
	n := 0
	return func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if n++; n == 10 {
			t.Fatalf("too many problems; giving up")
		}
	}
}

func procAtoi(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// testCounter: several processes increment a counter file under the lock
// with a plain read and write; a breach of mutual exclusion loses updates.
func testCounter(t *testing.T, k Kind) { procRunCounters(t, k, 4, 1, windowsFewer(150, 8)) }

// testProcessesAndGoroutines: several processes, each with several
// goroutines holding their own handles, increment the counter.
func testProcessesAndGoroutines(t *testing.T, k Kind) {
	procRunCounters(t, k, 3, 4, windowsFewer(40, 16))
}

// testKillReclaim: a holder killed with SIGKILL leaves its lock behind;
// another process on the same host takes it at once, because the dead PID
// frees it, not a lease (the taker's lease is an hour).
func testKillReclaim(t *testing.T, k Kind) {
	path := filepath.Join(testdir.New(t), "lock")
	holder := StartHelperSpec(t, "holder", k, HelperSpec{Role: RoleHold, Path: path})
	hpid, _ := procReady(t, holder)
	tok, uuid := procHolding(t, holder, "held")
	holder.Kill(t)

	// The dead holder's lock is still there.
	if _, o := procRecordAt(t, k, path); o.UUID != uuid {
		t.Fatalf("after SIGKILL the record at the path is %v, want the killed holder's (uuid %s)", o, uuid)
	}

	var victims []*stale.Owner
	l := procNewLock(t, k, path, lockcore.WithStaleAfter(time.Hour),
		lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
			victims = append(victims, v)
			t.Logf("broke: %v: %s", v, reason)
		}))
	ctx, cancel := context.WithTimeout(context.Background(), HelperTimeout)
	defer cancel()
	start := time.Now()
	if err := l.Lock(ctx); err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	el := time.Since(start)
	if el > procQuick {
		t.Errorf("Lock took %v after the holder was killed; a dead local holder must be taken over at once", el)
	}
	if got := l.Token(); got <= tok {
		t.Errorf("token after takeover = %d, want > %d (the killed holder's)", got, tok)
	}
	if len(victims) != 1 || victims[0] == nil || victims[0].UUID != uuid || victims[0].PID != hpid {
		t.Errorf("OnBreak victims = %v, want exactly the killed holder (pid %d, uuid %s)", victims, hpid, uuid)
	}
	if _, o := procRecordAt(t, k, path); o.PID != os.Getpid() || o.Token != l.Token() {
		t.Errorf("record at the path after takeover = %v, want ours", o)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}
}

// testKillWhileWaiting: a process already blocked in Lock behind a live
// holder wins as soon as the holder is killed.
func testKillWhileWaiting(t *testing.T, k Kind) {
	path := filepath.Join(testdir.New(t), "lock")
	holder := StartHelperSpec(t, "holder", k, HelperSpec{Role: RoleHold, Path: path})
	hpid, _ := procReady(t, holder)
	tok, uuid := procHolding(t, holder, "held")

	waiter := StartHelperSpec(t, "waiter", k, HelperSpec{
		Role: RoleContend, Path: path, StaleAfter: time.Hour, ReportTries: true,
	})
	procReady(t, waiter)
	waiter.Send(t, "start")
	// The waiter is blocked: it has judged the holder alive, repeatedly.
	WaitUntil(t, HelperTimeout, "the waiter to judge the live holder twice", func() bool {
		return waiter.Tries(hpid) >= 2 || len(waiter.Pending()) > 0
	}, waiter)
	if p := waiter.Pending(); len(p) > 0 {
		t.Fatalf("waiter printed %q while the holder was alive", p)
	}
	if _, o := procRecordAt(t, k, path); o.UUID != uuid {
		t.Fatalf("record at the path is %v, want the holder's (uuid %s)", o, uuid)
	}

	holder.Kill(t)
	killed := time.Now()
	wtok, wuuid := procHolding(t, waiter, "won")
	if el := time.Since(killed); el > procQuick {
		t.Errorf("waiter won %v after the holder was killed; want at once", el)
	}
	if wtok <= tok {
		t.Errorf("waiter's token %d, want > %d (the killed holder's)", wtok, tok)
	}
	if _, o := procRecordAt(t, k, path); o.UUID != wuuid {
		t.Errorf("record at the path is %v, want the waiter's (uuid %s)", o, wuuid)
	}
	procReleased(t, waiter)
}

// procContender is a contend helper with the PID it reported.
type procContender struct {
	*Helper
	pid int
}

// testRacingContenders: eight processes race for one stale lock. One wins;
// the others keep waiting (they keep judging the winner alive, and the
// record stays the winner's) until it releases; then the next one wins, and
// so on: each wins exactly once, tokens increase, no two holds overlap.
func testRacingContenders(t *testing.T, k Kind) {
	const (
		rounds      = 3
		triesWhileW = 3 // judgements of the winner each other procContender makes while it holds
	)
	contenders := windowsFewer(8, 2)
	dir := testdir.New(t)
	path := filepath.Join(dir, "lock")
	log := filepath.Join(dir, "events")
	var last uint64
	for round := 1; round <= rounds; round++ {
		holder := StartHelperSpec(t, fmt.Sprintf("r%d-holder", round), k, HelperSpec{Role: RoleHold, Path: path})
		procReady(t, holder)
		tok, uuid := procHolding(t, holder, "held")
		if tok <= last {
			t.Fatalf("round %d: holder's token %d, want > %d", round, tok, last)
		}
		last = tok

		cs := make([]procContender, contenders)
		for i := range cs {
			cs[i].Helper = StartHelperSpec(t, fmt.Sprintf("r%d-c%d", round, i), k, HelperSpec{
				Role: RoleContend, Path: path, Log: log,
				StaleAfter: time.Hour, PollMax: 20 * time.Millisecond, ReportTries: true,
			})
		}
		for i := range cs {
			cs[i].pid, _ = procReady(t, cs[i].Helper)
		}
		holder.Kill(t)
		if _, o := procRecordAt(t, k, path); o.UUID != uuid {
			t.Fatalf("round %d: after SIGKILL the record at the path is %v, want the killed holder's", round, o)
		}
		for _, c := range cs {
			c.Send(t, "start")
		}

		remaining := cs
		for len(remaining) > 0 {
			hs := procHelpers(remaining)
			WaitUntil(t, HelperTimeout, fmt.Sprintf("round %d: one of %d contenders to win", round, len(remaining)), func() bool {
				for _, h := range hs {
					if len(h.Pending()) > 0 {
						return true
					}
				}
				return false
			}, hs...)
			var w procContender
			var others []procContender
			var said []string
			for _, c := range remaining {
				if p := c.Pending(); len(p) > 0 {
					said = append(said, fmt.Sprintf("%s: %q", c.Label, p))
					w = c
				} else {
					others = append(others, c)
				}
			}
			if len(said) != 1 {
				t.Fatalf("round %d: more than one procContender spoke at once (two holders?):\n%s", round, strings.Join(said, "\n"))
			}
			wtok, wuuid := procHolding(t, w.Helper, "won")
			if wtok <= last {
				t.Errorf("round %d: %s won with token %d, want > %d", round, w.Label, wtok, last)
			}
			last = wtok

			// While w holds, every other procContender keeps trying and keeps
			// finding w's live record; none of them wins.
			if len(others) > 0 {
				base := make([]int, len(others))
				for i, c := range others {
					base[i] = c.Tries(w.pid)
				}
				ohs := procHelpers(others)
				WaitUntil(t, HelperTimeout, fmt.Sprintf("round %d: the other contenders to judge winner %s alive %d times each", round, w.Label, triesWhileW), func() bool {
					for i, c := range others {
						if len(c.Pending()) > 0 {
							return true
						}
						if c.Tries(w.pid) < base[i]+triesWhileW {
							return false
						}
					}
					return true
				}, ohs...)
				for _, c := range others {
					if p := c.Pending(); len(p) > 0 {
						t.Fatalf("round %d: %s printed %q while %s held the lock", round, c.Label, p, w.Label)
					}
				}
			}
			if _, o := procRecordAt(t, k, path); o.UUID != wuuid {
				t.Fatalf("round %d: while %s holds, the record at the path is %v, want %s's", round, w.Label, o, wuuid)
			}
			procReleased(t, w.Helper)
			remaining = others
		}
		procCheckEvents(t, log, round*contenders)
	}
}

func procHelpers(cs []procContender) []*Helper {
	hs := make([]*Helper, len(cs))
	for i, c := range cs {
		hs[i] = c.Helper
	}
	return hs
}

// procCheckEvents checks an O_APPEND log of "acquire TOKEN PID" and "release
// TOKEN PID" lines, each written while holding: holds never overlap, each
// process holds once, tokens increase.
func procCheckEvents(t *testing.T, log string, holds int) {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2*holds {
		t.Errorf("event log has %d lines, want %d:\n%s", len(lines), 2*holds, data)
	}
	complain := procLimit(t)
	var last uint64
	seen := map[int]bool{}
	var holding bool
	var htok uint64
	var hpid int
	for i, line := range lines {
		var ev string
		var tok uint64
		var pid int
		if _, err := fmt.Sscanf(line, "%s %d %d", &ev, &tok, &pid); err != nil {
			t.Fatalf("event log line %d: %q: %v", i+1, line, err)
		}
		switch ev {
		case "acquire":
			if holding {
				complain("event log line %d: %q while token %d (pid %d) still held: two holders", i+1, line, htok, hpid)
			}
			if tok <= last {
				complain("event log line %d: %q: token %d after %d", i+1, line, tok, last)
			}
			if seen[pid] {
				complain("event log line %d: %q: pid %d acquired twice", i+1, line, pid)
			}
			seen[pid] = true
			holding, htok, hpid, last = true, tok, pid, tok
		case "release":
			if !holding || tok != htok || pid != hpid {
				complain("event log line %d: %q does not end the hold of token %d (pid %d, held %v)", i+1, line, htok, hpid, holding)
			}
			holding = false
		default:
			complain("event log line %d: %q", i+1, line)
		}
	}
	if holding {
		t.Errorf("event log ends with token %d still held", htok)
	}
}

// testPIDReuse: a record naming a live process of this host, but with
// another start ID, is the record of a dead process whose PID was reused:
// it is taken over at once, by this process and by another. The same
// record with the live process's real start ID blocks.
func testPIDReuse(t *testing.T, k Kind) {
	dir := testdir.New(t)
	idle := StartHelperSpec(t, "idle", k, HelperSpec{Role: RoleIdle})
	pid, startID := procReady(t, idle)
	if startID == "" {
		t.Skip("this system reports no process start IDs, so PID reuse cannot be told apart")
	}
	live, err := stale.Self(7, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	live.PID, live.StartID = pid, startID
	reused := live
	if n, err := strconv.ParseUint(startID, 10, 64); err == nil {
		reused.StartID = strconv.FormatUint(n+1, 10)
	} else {
		reused.StartID = startID + "0"
	}

	// The checker agrees with the premise.
	ch, err := stale.NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	if j := ch.Judge(live); j.Verdict != stale.Alive {
		t.Fatalf("Judge(record of live helper) = %v (%s), want alive", j.Verdict, j.Reason)
	}
	if j := ch.Judge(reused); j.Verdict != stale.Dead {
		t.Fatalf("Judge(record with live PID, other start ID) = %v (%s), want dead", j.Verdict, j.Reason)
	}

	// Control: the live process's real identity blocks.
	alivePath := filepath.Join(dir, "alive")
	if err := k.Plant(alivePath, live.Marshal()); err != nil {
		t.Fatal(err)
	}
	err = procNewLock(t, k, alivePath, lockcore.WithStaleAfter(time.Hour)).TryLock()
	var le *lockcore.LockedError
	if !errors.As(err, &le) || len(le.Owners) != 1 || le.Owners[0].PID != pid {
		t.Errorf("TryLock on a record of a live helper = %v, want ErrLocked naming pid %d", err, pid)
	}

	// This process takes the reused-PID record at once.
	reusedPath := filepath.Join(dir, "reused")
	if err := k.Plant(reusedPath, reused.Marshal()); err != nil {
		t.Fatal(err)
	}
	var victims []*stale.Owner
	l := procNewLock(t, k, reusedPath, lockcore.WithStaleAfter(time.Hour),
		lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
			victims = append(victims, v)
			t.Logf("broke: %v: %s", v, reason)
		}))
	if err := l.TryLock(); err != nil {
		t.Fatalf("TryLock on a record whose PID was reused: %v", err)
	}
	if got := l.Token(); got <= reused.Token {
		t.Errorf("token = %d, want > %d (the planted record's)", got, reused.Token)
	}
	if len(victims) != 1 || victims[0] == nil || victims[0].UUID != reused.UUID {
		t.Errorf("OnBreak victims = %v, want the planted record", victims)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}

	// Another process takes it at once too.
	otherPath := filepath.Join(dir, "reused2")
	if err := k.Plant(otherPath, reused.Marshal()); err != nil {
		t.Fatal(err)
	}
	taker := StartHelperSpec(t, "taker", k, HelperSpec{Role: RoleContend, Path: otherPath, StaleAfter: time.Hour})
	procReady(t, taker)
	taker.Send(t, "start")
	start := time.Now()
	tok, _ := procHolding(t, taker, "won")
	if el := time.Since(start); el > procQuick {
		t.Errorf("helper took %v to take over a record whose PID was reused; want at once", el)
	}
	if tok <= reused.Token {
		t.Errorf("helper's token = %d, want > %d", tok, reused.Token)
	}
	procReleased(t, taker)

	// The control lock was never taken.
	if data, err := os.ReadFile(k.RecordPath(alivePath)); err != nil || !bytes.Equal(data, live.Marshal()) {
		t.Errorf("record of the live helper changed: %q, %v", data, err)
	}
	idle.CloseStdin()
	idle.WaitOK(t)
}

// testStoppedHolder: a holder stopped with SIGSTOP is alive (P3): a waiter
// on the same host never takes its lock, however long its heartbeat stays
// still — even with a lease far shorter than the wait. After SIGCONT it
// releases normally.
func testStoppedHolder(t *testing.T, k Kind) {
	if !procCanStop {
		t.Skip("SIGSTOP is not available on this system")
	}
	const wait = 2 * time.Second
	path := filepath.Join(testdir.New(t), "lock")
	holder := StartHelperSpec(t, "holder", k, HelperSpec{Role: RoleHold, Path: path})
	hpid, _ := procReady(t, holder)
	tok, uuid := procHolding(t, holder, "held")
	waiter := StartHelperSpec(t, "waiter", k, HelperSpec{
		Role: RoleContend, Path: path, ReportTries: true,
		StaleAfter: wait / 4, Timeout: wait,
	})
	procReady(t, waiter)

	if err := holder.Stop(); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	stopped := true
	defer func() {
		if stopped {
			holder.Cont()
		}
	}()
	if _, err := procState(holder.PID()); errors.Is(err, errNoProcState) {
		t.Logf("cannot see process states here; relying on SIGSTOP having taken effect")
	} else {
		procPollUntil(t, HelperTimeout, "the holder to be stopped", func() (bool, error) {
			st, err := procState(holder.PID())
			return st == 'T', err
		})
	}
	before, _ := procRecordAt(t, k, path)

	start := time.Now()
	waiter.Send(t, "start")

	// This process cannot take it either.
	err := procNewLock(t, k, path, lockcore.WithStaleAfter(wait/4)).TryLock()
	var le *lockcore.LockedError
	if !errors.As(err, &le) || len(le.Owners) != 1 || le.Owners[0].UUID != uuid {
		t.Errorf("TryLock while the holder is stopped = %v, want ErrLocked naming it", err)
	}

	waiter.Expect(t, "timeout")
	if el := time.Since(start); el < wait {
		t.Errorf("waiter gave up after %v, before its %v timeout", el, wait)
	}
	if n := waiter.Tries(hpid); n < 5 {
		t.Errorf("waiter judged the stopped holder %d times in %v, want at least 5", n, wait)
	}
	waiter.WaitOK(t)
	after, _ := procRecordAt(t, k, path)
	if !bytes.Equal(before, after) {
		t.Errorf("record of the stopped holder changed:\nbefore %q\nafter  %q", before, after)
	}

	if err := holder.Cont(); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
	stopped = false
	if _, err := procState(holder.PID()); !errors.Is(err, errNoProcState) {
		procPollUntil(t, HelperTimeout, "the holder to run again", func() (bool, error) {
			st, err := procState(holder.PID())
			return st != 'T', err
		})
	}
	procReleased(t, holder)

	l := procNewLock(t, k, path, lockcore.WithStaleAfter(time.Hour))
	if err := l.TryLock(); err != nil {
		t.Fatalf("TryLock after the holder released: %v", err)
	}
	if got := l.Token(); got <= tok {
		t.Errorf("token = %d, want > %d", got, tok)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}
}
