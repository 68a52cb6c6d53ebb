//go:build unix

package semaphore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/semaphore"
)

// The helper process: DOTLOCK_SEM_HELPER="DIR N COUNT HOLD" acquires COUNT
// times, printing "in T" and "out T" (CLOCK_MONOTONIC, shared by every
// process on the host) inside each hold; COUNT 0 acquires once, prints
// "held TOKEN" and holds until killed; COUNT -1 likewise, but releases
// when its stdin closes.
func TestMain(m *testing.M) {
	if spec := os.Getenv("DOTLOCK_SEM_HELPER"); spec != "" {
		os.Exit(helper(strings.Fields(spec)))
	}
	os.Exit(m.Run())
}

func helper(args []string) int {
	n, _ := strconv.Atoi(args[1])
	count, _ := strconv.Atoi(args[2])
	hold, _ := time.ParseDuration(args[3])
	s, err := semaphore.New(args[0], n)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ctx := context.Background()
	if count <= 0 {
		slot, err := s.Acquire(ctx)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("held", slot.Token())
		if count == 0 {
			select {}
		}
		io.Copy(io.Discard, os.Stdin) // until the test closes it
		if err := slot.Release(); err != nil {
			fmt.Println("error", err)
			return 1
		}
		return 0
	}
	for range count {
		slot, err := s.Acquire(ctx)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("in", monotonic())
		time.Sleep(hold) // the work done under the slot
		fmt.Println("out", monotonic())
		if err := slot.Release(); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	return 0
}

func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func helperCmd(t *testing.T, spec ...any) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DOTLOCK_SEM_HELPER="+strings.TrimSpace(fmt.Sprintln(spec...)))
	cmd.Stderr = os.Stderr
	return cmd
}

// startHolder starts a helper that takes the one slot of dir's semaphore
// (count: 0 holds until killed, -1 until its stdin closes) and returns
// once it holds it, with its stdin and its token.
func startHolder(t *testing.T, dir string, count int) (*exec.Cmd, io.WriteCloser, uint64) {
	cmd := helperCmd(t, dir, 1, count, "0s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "held ") {
		t.Fatalf("helper: %q", sc.Text())
	}
	tok, _ := strconv.ParseUint(strings.Fields(sc.Text())[1], 10, 64)
	return cmd, stdin, tok
}

// Processes contending for N slots: never more than N inside at once.
func TestProcessesNeverMoreThanN(t *testing.T) {
	const n, procs, count = 2, 5, 12
	dir := filepath.Join(testdir.New(t), "licence")
	type event struct {
		at int64
		d  int
	}
	var events []event
	var cmds []*exec.Cmd
	var outs []*bufio.Scanner
	for range procs {
		cmd := helperCmd(t, dir, n, count, "2ms")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, bufio.NewScanner(out))
	}
	for i, sc := range outs {
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if f[0] == "error" {
				t.Errorf("helper %d: %s", i, sc.Text())
				continue
			}
			at, _ := strconv.ParseInt(f[1], 10, 64)
			events = append(events, event{at, map[string]int{"in": 1, "out": -1}[f[0]]})
		}
		if err := cmds[i].Wait(); err != nil {
			t.Errorf("helper %d: %v", i, err)
		}
	}
	if len(events) != 2*procs*count {
		t.Fatalf("%d events, want %d", len(events), 2*procs*count)
	}
	// Leaving before entering at the same instant: holds that touch do not
	// overlap.
	sort.Slice(events, func(i, j int) bool {
		return events[i].at < events[j].at || (events[i].at == events[j].at && events[i].d < events[j].d)
	})
	inside, peak := 0, 0
	for _, e := range events {
		inside += e.d
		peak = max(peak, inside)
	}
	if peak > n {
		t.Fatalf("%d holders inside at once, with %d slots", peak, n)
	}
	t.Logf("peak %d of %d slots over %d holds", peak, n, procs*count)
}

// A SIGKILLed holder's slot is reclaimed; a live holder's never.
func TestHolderKilled(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "licence")
	cmd, _, tok := startHolder(t, dir, 0)
	s, err := semaphore.New(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.TryAcquire()
	var le *dotlock.LockedError
	if !errors.As(err, &le) || len(le.Owners) != 1 || le.Owners[0].PID != cmd.Process.Pid {
		t.Fatalf("TryAcquire while the helper (pid %d) holds: %v; want ErrLocked naming it", cmd.Process.Pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire while a live holder holds: %v; want the context's deadline", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slot, err := s.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	if slot.Token() <= tok {
		t.Errorf("token %d after the killed holder's %d", slot.Token(), tok)
	}
	if err := slot.Release(); err != nil {
		t.Fatal(err)
	}
}

// A waiter at the head of the line is woken by a release in another
// process on this host (Linux: inotify), not by polling: here it polls
// once an hour.
func TestWokenByReleaseOnThisHost(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("change notification (inotify) is Linux's; elsewhere a waiter polls")
	}
	dir := filepath.Join(testdir.New(t), "licence")
	cmd, stdin, _ := startHolder(t, dir, -1)
	s, err := semaphore.New(dir, 1, dotlock.WithPoll(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		slot, err := s.Acquire(ctx)
		if err == nil {
			err = slot.Release()
		}
		got <- err
	}()
	start := time.Now()
	stdin.Close() // the helper releases
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Acquire after a release on this host: %v", err)
	}
	t.Logf("acquired %v after the release began", time.Since(start))
}

// A waiter killed in line leaves the line's lock behind; TryAcquire
// reclaims it (the waiter is dead) instead of failing for ever with
// "a waiter is in line".
func TestDeadWaiterInLine(t *testing.T) {
	dir, s, held := fullSemaphore(t)
	// The helper waits in line (the one slot is held), then is killed.
	cmd := helperCmd(t, dir, 1, 0, "0s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the helper in line", func() bool { return inLine(dir, cmd.Process.Pid) })
	_, err := s.TryAcquire()
	var le *dotlock.LockedError
	if !errors.As(err, &le) || le.Cause != dotlock.WaitersQueued {
		t.Fatalf("TryAcquire while a live waiter is in line: %v; want WaitersQueued", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	slot, err := s.TryAcquire()
	if err != nil {
		t.Fatalf("TryAcquire after the waiter in line was killed: %v", err)
	}
	slot.Release()
}

// Waiters are served in the order they came, across processes: the line
// is a lock directory's queue. Four helpers join the line one after
// another while the one slot is held; once it is freed, they hold it in
// that order.
func TestArrivalOrder(t *testing.T) {
	dir, _, held := fullSemaphore(t)
	const n = 4
	var outs []*bufio.Scanner
	var cmds []*exec.Cmd
	for i := range n {
		cmd := helperCmd(t, dir, 1, 1, "5ms")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		cmds, outs = append(cmds, cmd), append(outs, bufio.NewScanner(out))
		// In line: the first holds the line, each other has a queue record.
		waitFor(t, fmt.Sprintf("helper %d in line", i), func() bool {
			if i == 0 {
				return inLine(dir, cmd.Process.Pid)
			}
			ents, _ := os.ReadDir(filepath.Join(dir, "turn.queue"))
			return len(ents) >= i
		})
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for i, sc := range outs {
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "in ") {
			t.Fatalf("helper %d: %q", i, sc.Text())
		}
		at, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
		got = append(got, at)
		for sc.Scan() {
		}
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
	}
	for i := 1; i < n; i++ {
		if got[i] < got[i-1] {
			t.Errorf("helper %d held the slot before helper %d, which came first (CLOCK_MONOTONIC %v)", i, i-1, got)
		}
	}
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// inLine reports whether process pid holds the line of dir's semaphore
// (its head waiter).
func inLine(dir string, pid int) bool {
	o, err := os.ReadFile(filepath.Join(dir, "turn", "owner"))
	return err == nil && strings.Contains(string(o), "\npid: "+strconv.Itoa(pid)+"\n")
}

// fullSemaphore makes a semaphore of one slot, held by the test.
func fullSemaphore(t *testing.T) (string, *semaphore.Semaphore, *semaphore.Slot) {
	dir := filepath.Join(testdir.New(t), "licence")
	s, err := semaphore.New(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	return dir, s, held
}
