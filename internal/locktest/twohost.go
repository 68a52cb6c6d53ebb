package locktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/sshfstest"
	"github.com/dotlock/dotlock/stale"
)

// The two-host suite: the lock on a real shared filesystem (sshfs), with
// helper processes on two simulated hosts (package sshfstest). Host A is
// this machine as the test sees it; host B has its own host name, boot ID
// and PID namespace and reaches the same files through its own mount.
// Each subtest starts its own cluster; sshfstest.Start skips (saying why)
// where one cannot be built: not Linux, not root, tools missing.
//
// Paths: a host-A process uses MountA, a host-B process MountB. The test
// inspects what is on disk through Export, the server's own view.

// thLease is the lease used where a test waits for a remote holder's lease
// to run out: short, so that the tests stay quick, and four heartbeats long.
const thLease = 1500 * time.Millisecond

// thSlack bounds how much longer than its lease a reclaim may take. It is a
// failure deadline for a loaded 2-core machine, not a wait.
const thSlack = 10 * time.Second

// RunTwoHosts runs the two-host suite against k:
//
//   - Exclusion: a host-A hold excludes host B, which waits (judging it
//     another host's, within its lease) and wins promptly on release;
//   - Counter: two processes per host increment a counter under the lock;
//   - PIDCollision: a host-B holder whose PID is a different live process
//     on host A is not judged by host A's process table;
//   - StoppedRemoteHolder: a SIGSTOPped host-B holder loses its lock to
//     host A after the lease, and learns it (Lost, ErrLost) when resumed;
//   - Killed: SIGKILLed holders, reclaimed by lease across hosts and at
//     once (PID check) on the same host;
//   - Reboot: a record of this host under another boot ID is reclaimable
//     at once;
//   - CachedTokens: fencing tokens stay increasing on mounts that cache
//     attributes;
//   - CachedEmpty: a record written is not broken as the empty entry a
//     cache still shows;
//   - Chaos, ChaosCached: workers on both hosts under random SIGKILLs and
//     host crashes, without and with sshfs's caches;
//   - lockdir only: SharedAcrossHosts, ChaosRW (chaos with shared and
//     exclusive holds) and CLIAcrossHosts (the dotlock command).
//
// Mounts are uncached (like NFS with noac,lookupcache=none) unless the
// name says Cached (sshfs's default caches, about 20 s).
func RunTwoHosts(t *testing.T, k Kind) {
	t.Run("Exclusion", func(t *testing.T) { thExclusion(t, k) })
	t.Run("Counter", func(t *testing.T) { thCounter(t, k) })
	t.Run("PIDCollision", func(t *testing.T) { thPIDCollision(t, k) })
	t.Run("StoppedRemoteHolder", func(t *testing.T) { thStoppedRemote(t, k) })
	t.Run("Killed", func(t *testing.T) { thKilled(t, k) })
	t.Run("Reboot", func(t *testing.T) { thReboot(t, k) })
	t.Run("CachedTokens", func(t *testing.T) { thCachedTokens(t, k) })
	t.Run("CachedEmpty", func(t *testing.T) { thCachedEmpty(t, k) })
	t.Run("Chaos", func(t *testing.T) { thChaos(t, k, false, 15*time.Second) })
	t.Run("ChaosCached", func(t *testing.T) { thChaos(t, k, true, 20*time.Second) })
	if k.Name == "lockdir" {
		// Shared/exclusive locks and the command (which builds its
		// binary once: here, not for lockfile too).
		thRWRun(t, k)
	}
}

// thPaths returns a lock path as host A, host B and the server see it.
func thPaths(c *sshfstest.Cluster, name string) (a, b, export string) {
	return filepath.Join(c.MountA, name), filepath.Join(c.MountB, name), filepath.Join(c.Export, name)
}

// thStart starts a helper playing s under k through command (c.CommandA,
// c.CommandB, or a CommandBootID), and points its Kill, Stop and Cont at the
// helper process itself rather than at any wrapper.
func thStart(t testing.TB, label string, command func(string, ...string) *exec.Cmd, k Kind, s HelperSpec) *Helper {
	t.Helper()
	name, argv, env := HelperCmd(k, s)
	cmd := command(name, argv...)
	cmd.Env = append(os.Environ(), env...)
	h := StartHelper(t, label, cmd)
	pid, err := sshfstest.HostPID(cmd)
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", label, err, h.describe())
	}
	h.SetPID(pid)
	return h
}

// thBootCommand returns a command maker for host A after a faked reboot.
func thBootCommand(c *sshfstest.Cluster, bootID string) func(string, ...string) *exec.Cmd {
	return func(name string, args ...string) *exec.Cmd { return c.CommandBootID(bootID, name, args...) }
}

// thExpectWaiting takes a helper's "waiting REASON" line (RoleWatch) and
// checks that the reason contains each of want.
func thExpectWaiting(t testing.TB, h *Helper, want ...string) string {
	t.Helper()
	f := h.Expect(t, "waiting")
	line := strings.Join(f[1:], " ")
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("helper %s waits because %q; want it to say %q", h.Label, line, w)
		}
	}
	return line
}

// thExpect takes h's next line, passing over "waiting" lines (a RoleWatch
// helper may be told more than once who is in the way), and fails the test
// unless its first word is word. It returns the line's words.
func thExpect(t testing.TB, h *Helper, word string) []string {
	t.Helper()
	for {
		line := h.Next(t)
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "waiting" && word != "waiting" {
			continue
		}
		if len(f) == 0 || f[0] != word {
			t.Fatalf("helper %s: got %q, want %q ...\n%s", h.Label, line, word, h.describe())
		}
		return f
	}
}

func thHostname(t testing.TB) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// thStopped waits until process pid is stopped (or, with stopped false,
// running again).
func thStopped(t testing.TB, pid int, stopped bool) {
	t.Helper()
	procPollUntil(t, HelperTimeout, fmt.Sprintf("process %d stopped=%v", pid, stopped), func() (bool, error) {
		st, err := procState(pid)
		return (st == 'T') == stopped, err
	})
}

// thExclusion: a lock held on host A excludes host B, which judges the
// record as another host's and, with a lease longer than the test, waits —
// and keeps trying, so that it takes the lock as soon as host A releases.
func thExclusion(t *testing.T, k Kind) {
	c := sshfstest.Start(t, sshfstest.Options{})
	hostA := thHostname(t)
	pa, pb, pe := thPaths(c, "x.lock")

	holder := thStart(t, "a-holder", c.CommandA, k, HelperSpec{Role: RoleHold, Path: pa})
	procReady(t, holder)
	tokA, uuidA := procHolding(t, holder, "held")

	// A waiter on host B gives up after its timeout, never having won.
	const wait = 2 * time.Second
	b1 := thStart(t, "b-waiter", c.CommandB, k, HelperSpec{Role: RoleWatch, Path: pb, StaleAfter: time.Hour, Timeout: wait})
	procReady(t, b1)
	start := time.Now()
	b1.Send(t, "start")
	thExpectWaiting(t, b1, "another host", hostA, "within lease")
	thExpect(t, b1, "timeout")
	if el := time.Since(start); el < wait {
		t.Errorf("host-B waiter gave up after %v, before its %v timeout", el, wait)
	}
	b1.WaitOK(t)
	if _, o := procRecordAt(t, k, pe); o.UUID != uuidA {
		t.Fatalf("after host B's wait the record is %v, want host A's holder's (uuid %s)", o, uuidA)
	}

	// A second host-B waiter is blocked until host A releases, then wins
	// promptly (its lease is an hour: only the release can free the lock).
	b2 := thStart(t, "b-contender", c.CommandB, k, HelperSpec{Role: RoleWatch, Path: pb, StaleAfter: time.Hour})
	procReady(t, b2)
	b2.Send(t, "start")
	thExpectWaiting(t, b2, "another host", hostA)
	for _, p := range b2.Pending() {
		if !strings.HasPrefix(p, "waiting ") {
			t.Fatalf("host-B contender printed %q while host A held the lock", p)
		}
	}
	holder.CloseStdin()
	holder.Expect(t, "released")
	released := time.Now()
	holder.WaitOK(t)
	tokB, uuidB := thHolding(t, b2)
	if el := time.Since(released); el > procQuick {
		t.Errorf("host-B contender won %v after host A released; want promptly (it must keep trying)", el)
	}
	if tokB <= tokA {
		t.Errorf("host B's token %d, want > %d (host A's)", tokB, tokA)
	}
	if _, o := procRecordAt(t, k, pe); o.UUID != uuidB || o.Host != c.HostB {
		t.Errorf("record after host B won is %v, want host B's contender's (uuid %s)", o, uuidB)
	}
	b2.CloseStdin()
	thExpect(t, b2, "released")
	b2.WaitOK(t)
}

// thHolding takes a RoleWatch helper's "won TOKEN UUID" line.
func thHolding(t testing.TB, h *Helper) (token uint64, uuid string) {
	t.Helper()
	f := thExpect(t, h, "won")
	if len(f) != 3 {
		t.Fatalf("helper %s: bad won line %q", h.Label, f)
	}
	token, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || token == 0 {
		t.Fatalf("helper %s: bad token in %q", h.Label, f)
	}
	return token, f[2]
}

// thCounter: two processes per host increment a counter file under the
// lock, each through its own host's mount, with a plain read and write: a
// breach of mutual exclusion loses updates. Tokens must increase.
func thCounter(t *testing.T, k Kind) {
	const (
		perHost = 2
		n       = 40
	)
	c := sshfstest.Start(t, sshfstest.Options{})
	spec := func(mount string) HelperSpec {
		return HelperSpec{
			Role:       RoleCounter,
			Path:       filepath.Join(mount, "x.lock"),
			Counter:    filepath.Join(mount, "counter"),
			Log:        filepath.Join(c.Export, "log"), // local appends: see thChaosMode
			Iterations: n,
			PollMax:    2 * time.Millisecond,
		}
	}
	var hs []*Helper
	for i := range perHost {
		hs = append(hs, thStart(t, fmt.Sprintf("a-counter%d", i), c.CommandA, k, spec(c.MountA)))
		hs = append(hs, thStart(t, fmt.Sprintf("b-counter%d", i), c.CommandB, k, spec(c.MountB)))
	}
	want := map[int]int{} // PID as logged -> holds
	for _, h := range hs {
		pid, _ := procReady(t, h)
		want[pid] += n
	}
	start := time.Now()
	for _, h := range hs {
		h.Send(t, "start")
	}
	for _, h := range hs {
		f := h.Expect(t, "done")
		if len(f) != 2 || f[1] != strconv.Itoa(n) {
			t.Errorf("helper %s: %q, want done %d", h.Label, f, n)
		}
		h.WaitOK(t)
	}
	t.Logf("%d processes on two hosts x %d holds: %v", len(hs), n, time.Since(start).Round(time.Millisecond))
	procCheckCounter(t, filepath.Join(c.Export, "counter"), filepath.Join(c.Export, "log"), want)
}

// thPIDCollision: a host-B holder whose PID number is also a live process
// on host A is judged by its host name, never by host A's process table:
// host A's process with that PID started at another time, which on one
// host would mean "PID reused, holder dead", yet host A must not break the
// lock. TryLock says it is held on another host.
func thPIDCollision(t *testing.T, k Kind) {
	c := sshfstest.Start(t, sshfstest.Options{})
	pa, pb, pe := thPaths(c, "x.lock")

	holder := thStart(t, "b-holder", c.CommandB, k, HelperSpec{Role: RoleHold, Path: pb})
	bpid, _ := procReady(t, holder)
	_, uuidB := procHolding(t, holder, "held")
	// Host B's PIDs are small numbers, which nearly always exist on host A
	// too (kernel threads, init). If this one does not, give it to a
	// process of host A.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", bpid)); err != nil {
		t.Logf("host-B holder's pid %d is not a host-A pid; starting a host-A process with that pid", bpid)
		thOccupyPID(t, c, k, bpid)
	}
	before, rec := procRecordAt(t, k, pe)
	if rec.PID != bpid || rec.Host != c.HostB || rec.UUID != uuidB {
		t.Fatalf("record at the path is %v, want host B's holder (pid %d, uuid %s)", rec, bpid, uuidB)
	}

	// The premise: host A has a process with that PID, started at another
	// time; judged as a host-A record, the holder would be dead.
	p, err := stale.SystemProcesses{}.Lookup(bpid)
	if err != nil || !p.Exists {
		t.Fatalf("host A's process %d: %+v, %v; want it to exist", bpid, p, err)
	}
	if p.StartID == rec.StartID {
		t.Fatalf("host A's process %d has the start ID %s recorded by host B's holder; the test needs them to differ", bpid, p.StartID)
	}
	ch, err := stale.NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	asLocal := rec
	asLocal.Host, asLocal.BootID, asLocal.PIDNS = ch.Local.Host, ch.Local.BootID, ch.Local.PIDNS
	if j := ch.Judge(asLocal); j.Verdict != stale.Dead {
		t.Fatalf("Judge(the record, as if written on host A) = %v (%s); want dead (PID reused)", j.Verdict, j.Reason)
	}
	t.Logf("host B's holder is pid %d (start %s); host A's pid %d started %s", bpid, rec.StartID, bpid, p.StartID)

	var broke []string
	l := procNewLock(t, k, pa, lockcore.WithStaleAfter(time.Hour),
		lockcore.WithOnBreak(func(v *stale.Owner, reason string) { broke = append(broke, fmt.Sprintf("%v: %s", v, reason)) }))
	err = l.TryLock()
	var le *lockcore.LockedError
	switch {
	case err == nil:
		t.Fatalf("host A's TryLock took host B's live lock (OnBreak: %q)", broke)
	case !errors.As(err, &le):
		t.Fatalf("host A's TryLock = %v, want ErrLocked", err)
	}
	if !strings.Contains(le.Reason, "another host") || len(le.Owners) != 1 || le.Owners[0].UUID != uuidB {
		t.Errorf("host A's TryLock = %v; want it held on another host by host B's holder (uuid %s)", err, uuidB)
	}
	// Nor does waiting in Lock (with a lease longer than the test) take it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err = l.Lock(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("host A's Lock with a 1s deadline = %v, want the deadline", err)
	}
	if len(broke) > 0 {
		t.Errorf("host A broke host B's lock: %q", broke)
	}
	after, o := procRecordAt(t, k, pe)
	if o.UUID != uuidB {
		t.Fatalf("record is now %v, want host B's holder's", o)
	}
	if !bytes.Equal(before[:o.HeartbeatOffset()], after[:o.HeartbeatOffset()]) {
		t.Errorf("record changed beyond its heartbeat:\nbefore %q\nafter  %q", before, after)
	}
	// Host B's holder never lost it: it releases cleanly.
	procReleased(t, holder)
}

// thStoppedRemote: a host-B holder stopped with SIGSTOP stops
// heartbeating; host A takes the lock once its lease has run out (not
// before), and the host-B holder, resumed, finds out: Lost() closes and
// Unlock fails with ErrLost, leaving host A's lock alone. (Where there is
// no SIGSTOP, there is no cluster either: Start skips.)
func thStoppedRemote(t *testing.T, k Kind) {
	c := sshfstest.Start(t, sshfstest.Options{})
	pa, pb, pe := thPaths(c, "x.lock")
	holder := thStart(t, "b-holder", c.CommandB, k, HelperSpec{Role: RoleHold, Path: pb, StaleAfter: thLease})
	procReady(t, holder)
	tokB, uuidB := procHolding(t, holder, "held")

	if err := holder.Stop(); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	stopped := true
	defer func() {
		if stopped {
			holder.Cont()
		}
	}()
	thStopped(t, holder.PID(), true)

	var victims []string
	l := procNewLock(t, k, pa, lockcore.WithStaleAfter(thLease),
		lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
			if v != nil && v.UUID == uuidB {
				victims = append(victims, reason)
			} else {
				victims = append(victims, fmt.Sprintf("%v: %s", v, reason))
			}
		}))
	ctx, cancel := context.WithTimeout(context.Background(), thLease+thSlack)
	defer cancel()
	start := time.Now()
	if err := l.Lock(ctx); err != nil {
		t.Fatalf("host A's Lock with lease %v, host B's holder stopped: %v", thLease, err)
	}
	el := time.Since(start)
	t.Logf("host A took the stopped host-B holder's lock after %v (lease %v); broke: %q", el.Round(time.Millisecond), thLease, victims)
	if el < thLease {
		t.Errorf("host A took the lock after %v, before its lease of %v ran out", el, thLease)
	}
	if len(victims) != 1 || !strings.Contains(victims[0], "unchanged") {
		t.Errorf("OnBreak calls %q; want one, for host B's holder, whose heartbeat stayed unchanged", victims)
	}
	tokA := l.Token()
	if tokA <= tokB {
		t.Errorf("host A's token %d, want > %d (host B's)", tokA, tokB)
	}

	if err := holder.Cont(); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
	stopped = false
	holder.Expect(t, "lost")
	holder.CloseStdin()
	f := holder.Expect(t, "unlock-error")
	if line := strings.Join(f, " "); !strings.Contains(line, "lost") {
		t.Errorf("host B's Unlock: %q; want ErrLost", line)
	}
	holder.WaitOK(t)
	if _, o := procRecordAt(t, k, pe); o.UUID != mustHeld(t, l).UUID || o.Token != tokA {
		t.Errorf("after host B's Unlock the record is %v, want host A's (token %d)", o, tokA)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("host A's Unlock: %v", err)
	}
}

// thOccupyPID starts an idle host-A helper with PID pid, by setting the
// last PID handed out in host A's PID namespace (ns_last_pid, root only).
func thOccupyPID(t *testing.T, c *sshfstest.Cluster, k Kind, pid int) {
	t.Helper()
	const lastPID = "/proc/sys/kernel/ns_last_pid"
	for attempt := 1; attempt <= 20; attempt++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return // taken meanwhile
		}
		if err := os.WriteFile(lastPID, []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
			t.Fatalf("cannot make a host-A process with pid %d: %v", pid, err)
		}
		h := thStart(t, fmt.Sprintf("a-idle%d", attempt), c.CommandA, k, HelperSpec{Role: RoleIdle})
		if got, _ := procReady(t, h); got == pid {
			return // it runs until the test ends
		}
		h.CloseStdin()
		h.WaitOK(t)
	}
	t.Fatalf("could not start a host-A process with pid %d (other processes kept taking it)", pid)
}

// mustHeld returns the record of l's current hold, from the disk as l sees it.
func mustHeld(t testing.TB, l Locker) stale.Owner {
	t.Helper()
	o, err := l.Owner()
	if err != nil {
		t.Fatalf("Owner: %v", err)
	}
	if o.Token != l.Token() {
		t.Fatalf("Owner() = %v, but the handle holds token %d", o, l.Token())
	}
	return o
}

// thKilled: holders killed with SIGKILL.
func thKilled(t *testing.T, k Kind) {
	c := sshfstest.Start(t, sshfstest.Options{})

	// Host B's holder, killed: host A cannot look it up and waits for its
	// lease to run out.
	t.Run("RemoteHolder", func(t *testing.T) {
		pa, pb, pe := thPaths(c, "remote.lock")
		holder := thStart(t, "b-holder", c.CommandB, k, HelperSpec{Role: RoleHold, Path: pb, StaleAfter: thLease})
		procReady(t, holder)
		tokB, uuidB := procHolding(t, holder, "held")
		killed := time.Now()
		holder.Kill(t)
		if _, o := procRecordAt(t, k, pe); o.UUID != uuidB {
			t.Fatalf("after SIGKILL the record is %v, want the killed holder's", o)
		}
		var victims []string
		l := procNewLock(t, k, pa, lockcore.WithStaleAfter(thLease),
			lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
				victims = append(victims, fmt.Sprintf("%s: %s", v.UUID, reason))
			}))
		ctx, cancel := context.WithTimeout(context.Background(), thLease+thSlack)
		defer cancel()
		start := time.Now()
		if err := l.Lock(ctx); err != nil {
			t.Fatalf("host A's Lock after host B's holder was killed: %v", err)
		}
		el := time.Since(start)
		t.Logf("host A reclaimed the killed host-B holder's lock %v after trying (%v after the kill); lease %v",
			el.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), thLease)
		if el < thLease {
			t.Errorf("host A reclaimed it after %v, before its lease of %v ran out", el, thLease)
		}
		if len(victims) != 1 || !strings.HasPrefix(victims[0], uuidB+": ") || !strings.Contains(victims[0], "another host") {
			t.Errorf("OnBreak calls %q; want one, for host B's holder (uuid %s), on another host", victims, uuidB)
		}
		if l.Token() <= tokB {
			t.Errorf("host A's token %d, want > %d", l.Token(), tokB)
		}
		if err := l.Unlock(); err != nil {
			t.Errorf("Unlock: %v", err)
		}
	})

	// Host A's holder, killed, while a host-A waiter with an hour's lease
	// waits: the waiter's process-table check frees it at once.
	t.Run("LocalHolder", func(t *testing.T) {
		pa, _, pe := thPaths(c, "local.lock")
		holder := thStart(t, "a-holder", c.CommandA, k, HelperSpec{Role: RoleHold, Path: pa})
		hpid, _ := procReady(t, holder)
		tok, uuid := procHolding(t, holder, "held")
		waiter := thStart(t, "a-waiter", c.CommandA, k, HelperSpec{Role: RoleContend, Path: pa, StaleAfter: time.Hour, ReportTries: true})
		procReady(t, waiter)
		waiter.Send(t, "start")
		WaitUntil(t, HelperTimeout, "the host-A waiter to judge the live holder twice", func() bool {
			return waiter.Tries(hpid) >= 2 || len(waiter.Pending()) > 0
		}, waiter)
		if p := waiter.Pending(); len(p) > 0 {
			t.Fatalf("host-A waiter printed %q while the holder was alive", p)
		}
		holder.Kill(t)
		killed := time.Now()
		wtok, wuuid := procHolding(t, waiter, "won")
		el := time.Since(killed)
		t.Logf("host-A waiter took the killed host-A holder's lock %v after the kill", el.Round(time.Millisecond))
		if el > procQuick {
			t.Errorf("host-A waiter won %v after the kill; want at once (by the PID check)", el)
		}
		if wtok <= tok {
			t.Errorf("waiter's token %d, want > %d", wtok, tok)
		}
		if _, o := procRecordAt(t, k, pe); o.UUID != wuuid || o.UUID == uuid {
			t.Errorf("record is %v, want the waiter's (uuid %s)", o, wuuid)
		}
		procReleased(t, waiter)
	})

	// Host A's holder, killed, while a host-B waiter waits: host B cannot
	// look host A's processes up, so it waits for the lease.
	t.Run("LocalHolderRemoteWaiter", func(t *testing.T) {
		pa, pb, _ := thPaths(c, "cross.lock")
		holder := thStart(t, "a-holder", c.CommandA, k, HelperSpec{Role: RoleHold, Path: pa, StaleAfter: thLease})
		procReady(t, holder)
		tok, _ := procHolding(t, holder, "held")
		waiter := thStart(t, "b-waiter", c.CommandB, k, HelperSpec{Role: RoleWatch, Path: pb, StaleAfter: thLease})
		procReady(t, waiter)
		holder.Kill(t)
		start := time.Now()
		waiter.Send(t, "start")
		thExpectWaiting(t, waiter, "another host")
		wtok, _ := thHolding(t, waiter)
		el := time.Since(start)
		t.Logf("host-B waiter took the killed host-A holder's lock after %v (lease %v)", el.Round(time.Millisecond), thLease)
		if el < thLease {
			t.Errorf("host-B waiter took it after %v, before its lease of %v ran out", el, thLease)
		}
		if el > thLease+thSlack {
			t.Errorf("host-B waiter took %v, far beyond its lease of %v", el, thLease)
		}
		if wtok <= tok {
			t.Errorf("waiter's token %d, want > %d", wtok, tok)
		}
		waiter.CloseStdin()
		thExpect(t, waiter, "released")
		waiter.WaitOK(t)
	})
}

// thReboot: a record written on this host under another boot ID is the
// record of a holder from before a reboot: dead, reclaimable at once (P2),
// whatever the process table says about its PID.
func thReboot(t *testing.T, k Kind) {
	c := sshfstest.Start(t, sshfstest.Options{})
	hostA := thHostname(t)

	takeAtOnce := func(t *testing.T, path, uuid string) *stale.Owner {
		t.Helper()
		var victims []string
		l := procNewLock(t, k, path, lockcore.WithStaleAfter(time.Hour),
			lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
				victims = append(victims, fmt.Sprintf("%s: %s", v.UUID, reason))
			}))
		ctx, cancel := context.WithTimeout(context.Background(), HelperTimeout)
		defer cancel()
		start := time.Now()
		if err := l.Lock(ctx); err != nil {
			t.Fatalf("Lock on the record of a rebooted host: %v", err)
		}
		if el := time.Since(start); el > procQuick {
			t.Errorf("Lock took %v; a holder from before a reboot must be taken over at once", el)
		}
		if len(victims) != 1 || !strings.HasPrefix(victims[0], uuid+": ") || !strings.Contains(victims[0], "reboot") {
			t.Errorf("OnBreak calls %q; want one, for uuid %s, saying the host rebooted", victims, uuid)
		}
		o := mustHeld(t, l)
		t.Cleanup(func() {
			if err := l.Unlock(); err != nil {
				t.Errorf("Unlock: %v", err)
			}
		})
		return &o
	}

	// A planted record naming this very process (alive, with its real
	// start ID) under another boot ID.
	t.Run("Planted", func(t *testing.T) {
		pa, _, _ := thPaths(c, "planted.lock")
		rec, err := stale.Self(41, stale.ModeExclusive, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// Control: with the real boot ID, it is this live process's lock.
		ctl, _, _ := thPaths(c, "control.lock")
		if err := k.Plant(ctl, rec.Marshal()); err != nil {
			t.Fatal(err)
		}
		if err := procNewLock(t, k, ctl, lockcore.WithStaleAfter(time.Hour)).TryLock(); !errors.Is(err, lockcore.ErrLocked) {
			t.Fatalf("TryLock on a record of this live process = %v, want ErrLocked", err)
		}
		rec.BootID = sshfstest.NewBootID()
		if err := k.Plant(pa, rec.Marshal()); err != nil {
			t.Fatal(err)
		}
		o := takeAtOnce(t, pa, rec.UUID)
		if o.Token <= rec.Token {
			t.Errorf("token %d, want > %d", o.Token, rec.Token)
		}
	})

	// A live holder that sees another boot ID than host A's processes
	// (same host name, same PID namespace: its PID and start ID check out
	// in host A's process table). A real reboot leaves no live holder;
	// this is what happens when processes sharing a host name disagree on
	// the boot ID (containers that fake /proc/sys/kernel/random/boot_id):
	// each takes the other's lock as a dead one's. The holder finds out.
	t.Run("AliveOtherBoot", func(t *testing.T) {
		pa, _, pe := thPaths(c, "alive.lock")
		holder := thStart(t, "rebooted-holder", thBootCommand(c, sshfstest.NewBootID()), k,
			HelperSpec{Role: RoleHold, Path: pa, StaleAfter: 2 * time.Second})
		procReady(t, holder)
		tok, uuid := procHolding(t, holder, "held")
		_, rec := procRecordAt(t, k, pe)
		if rec.Host != hostA || rec.PID != holder.PID() {
			t.Fatalf("rebooted holder's record %v; want host %s, pid %d", rec, hostA, holder.PID())
		}
		if p, err := (stale.SystemProcesses{}).Lookup(rec.PID); err != nil || !p.Exists || p.StartID != rec.StartID {
			t.Fatalf("rebooted holder's process in host A's table: %+v, %v; want it alive with start %s", p, err, rec.StartID)
		}
		o := takeAtOnce(t, pa, uuid)
		if o.Token <= tok {
			t.Errorf("token %d, want > %d", o.Token, tok)
		}
		holder.Expect(t, "lost")
		holder.CloseStdin()
		if f := holder.Expect(t, "unlock-error"); !strings.Contains(strings.Join(f, " "), "lost") {
			t.Errorf("rebooted holder's Unlock: %q, want ErrLost", f)
		}
		holder.WaitOK(t)
		if _, now := procRecordAt(t, k, pe); now.UUID != o.UUID {
			t.Errorf("record after the rebooted holder's Unlock is %v, want ours", now)
		}
	})

	// The realistic case: the holder from before the reboot is gone.
	t.Run("KilledOtherBoot", func(t *testing.T) {
		pa, _, _ := thPaths(c, "killed.lock")
		holder := thStart(t, "rebooted-holder", thBootCommand(c, sshfstest.NewBootID()), k,
			HelperSpec{Role: RoleHold, Path: pa})
		procReady(t, holder)
		tok, uuid := procHolding(t, holder, "held")
		holder.Kill(t)
		o := takeAtOnce(t, pa, uuid)
		if o.Token <= tok {
			t.Errorf("token %d, want > %d", o.Token, tok)
		}
	})
}
