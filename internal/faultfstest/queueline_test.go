//go:build linux

package faultfstest

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
)

// dirWaiter is a process of this test binary waiting for a lock
// directory (TestMain, waiterDirEnv): it exits 0 once it holds it.
type dirWaiter struct {
	cmd  *exec.Cmd
	out  strings.Builder
	done chan error
}

func startDirWaiter(t *testing.T, path string, beat time.Duration) *dirWaiter {
	t.Helper()
	w := &dirWaiter{cmd: exec.Command(os.Args[0]), done: make(chan error, 1)}
	// GORACE: a race-enabled binary otherwise waits a second as it exits.
	w.cmd.Env = append(os.Environ(), waiterEnv+"="+path, waiterDirEnv+"="+beat.String(), "GORACE=atexit_sleep_ms=0")
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.done
	})
	return w
}

// queued waits until the lock's queue (in the backing directory) holds n
// writers' records, and returns their names in queue order.
func queued(t *testing.T, queue string, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var names []string
		entries, _ := os.ReadDir(queue)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".w.") {
				names = append(names, e.Name())
			}
		}
		if len(names) >= n {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued within 20 s, want %d", len(names), n)
		}
	}
}

// holdDirFromBacking takes the lock directory dir/x.lock through the
// backing directory, as a holder on another client would.
func holdDirFromBacking(t *testing.T, f *FS, dir string) *dotlock.RWMutex {
	t.Helper()
	if err := os.Mkdir(filepath.Join(f.Backing, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	return tryFromBacking(t, f, dir, func(p string) (*dotlock.RWMutex, error) { return lockdir.New(p) })
}

// TestQueueHostLineBoundsLooks: the queued writers of one host for one
// lock directory on a network filesystem take turns at looking at the
// server (W8): six waiting processes must not look much more often than
// one. Each look reads P's record once (S3); its opens are counted.
func TestQueueHostLineBoundsLooks(t *testing.T) {
	f := MountT(t, Options{})
	holder := holdDirFromBacking(t, f, "d")
	defer holder.Unlock()
	path := filepath.Join(f.Mount, "d", "x.lock")
	queue := filepath.Join(f.Backing, "d", "x.lock.queue")
	count := func(n int) int {
		var ws []*dirWaiter
		for range n {
			ws = append(ws, startDirWaiter(t, path, 5*time.Second))
		}
		queued(t, queue, n)
		f.Set(1, Rule{Op: OpOpen, Name: "owner", Action: Delay}) // counts them
		time.Sleep(1500 * time.Millisecond)
		looks := len(f.Faults())
		f.Clear()
		for i, w := range ws {
			w.cmd.Process.Kill()
			if err := <-w.done; err == nil || w.cmd.ProcessState.ExitCode() != -1 {
				t.Fatalf("waiter %d ended by itself (%v): %s", i, err, w.out.String())
			}
			w.done <- nil // for the cleanup
		}
		for _, n := range queued(t, queue, 0) { // the killed waiters' records
			os.Remove(filepath.Join(queue, n))
		}
		return looks
	}
	one := count(1)
	six := count(6)
	t.Logf("reads of the lock's record in 1.5 s: one waiting process %d, six %d", one, six)
	if one < 5 {
		t.Fatalf("one waiter read the lock's record %d times in 1.5 s: it is not waiting as it should", one)
	}
	if six > 2*one {
		t.Errorf("six waiting processes read the lock's record %d times where one read it %d: want at most twice one's (one poller per host)", six, one)
	}
}

// TestQueueHostLineRingsFollower: a lock handed, by another client, to a
// queued writer that does not head its host's line reaches it at once:
// the head's next look finds it handed to a process of this host and
// rings the line's bell. The follower would otherwise learn of it at its
// own look, half a heartbeat period (here 10 s) later.
func TestQueueHostLineRingsFollower(t *testing.T) {
	f := MountT(t, Options{})
	holder := holdDirFromBacking(t, f, "d")
	path := filepath.Join(f.Mount, "d", "x.lock")
	queue := filepath.Join(f.Backing, "d", "x.lock.queue")
	const beat = 20 * time.Second
	head := startDirWaiter(t, path, beat)
	first := queued(t, queue, 1)[0]
	waitLineHeld(t, path)
	follower := startDirWaiter(t, path, beat)
	mine := queued(t, queue, 2)[1]
	// The head queues again behind the follower (as a waiter whose record
	// was dropped does), so that the lock is handed to the follower.
	if err := os.Remove(filepath.Join(queue, first)); err != nil {
		t.Fatal(err)
	}
	queued(t, queue, 2)
	// The follower, woken by the head's queueing here, looks once more:
	// not halfway through a look when it is stopped, or that look finds
	// the lock handed to it.
	quiet(t, f, mine)
	// Both stopped, the lock is released and handed on from the other
	// client alone: a waiter that saw it free would hand it on itself,
	// through this client, whose change notification wakes the follower.
	guard := filepath.Join(f.Backing, "d", "x.lock.break")
	stopOutsideGuard(t, guard, head, follower)
	if err := holder.Unlock(); err != nil { // hands the lock to the queue's head
		t.Fatal(err)
	}
	if err := follower.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(f.Backing, "d", "x.lock", "owner")); err != nil || !strings.Contains(string(data), "\npid: "+strconv.Itoa(follower.cmd.Process.Pid)+"\n") {
		t.Fatalf("the lock was not handed to the follower (pid %d): %v\n%s", follower.cmd.Process.Pid, err, data)
	}
	released := time.Now()
	if err := head.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-follower.done:
		follower.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("the follower: %v: %s", err, follower.out.String())
		}
		t.Logf("the follower held the lock %v after the release", time.Since(released).Round(time.Millisecond))
	case err := <-head.done:
		head.done <- err
		t.Fatalf("the head, not the follower, was handed the lock (%v): %s", err, head.out.String())
	case <-time.After(beat / 4):
		t.Fatalf("the follower did not learn within %v that the lock was handed to it (its own look comes after %v)", beat/4, beat/2)
	}
}

// stopOutsideGuard stops the waiters (SIGSTOP) at a moment none of them
// holds the breaker guard (a file at guard).
func stopOutsideGuard(t *testing.T, guard string, ws ...*dirWaiter) {
	t.Helper()
	signal := func(sig syscall.Signal) {
		for _, w := range ws {
			if err := w.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		signal(syscall.SIGSTOP)
		for _, w := range ws {
			waitStopped(t, w.cmd.Process.Pid)
		}
		if _, err := os.Lstat(guard); errors.Is(err, fs.ErrNotExist) {
			return
		}
		signal(syscall.SIGCONT)
		if time.Now().After(deadline) {
			t.Fatal("a waiter held the guard whenever they were stopped, for 20 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet waits until 300 ms pass without a lookup of name (a queued
// waiter's record: each of its looks begins with one).
func quiet(t *testing.T, f *FS, name string) {
	t.Helper()
	f.Set(1, Rule{Op: OpLookup, Name: name, Action: Delay}) // counts them
	defer f.Clear()
	n, since := 0, time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Since(since) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if got := len(f.Faults()); got != n {
			n, since = got, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter of %s kept looking for 20 s", name)
		}
	}
}

// waitStopped waits until process pid is stopped (state T).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " T") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 10 s after SIGSTOP", pid)
		}
	}
}

// TestQueueHostLineStuckHead: a queued writer that follows a head that
// never looks (here the test holds the line's flock) still learns that the
// lock was handed to it, by its own look, twice a heartbeat period (W8),
// whoever handed it: here another client, whose hand-over this client's
// change notification does not see.
func TestQueueHostLineStuckHead(t *testing.T) {
	f := MountT(t, Options{})
	holder := holdDirFromBacking(t, f, "d")
	path := filepath.Join(f.Mount, "d", "x.lock")
	defer takeLineHead(t, path, ".queue").Close()
	const beat = 2 * time.Second
	w := startDirWaiter(t, path, beat)
	mine := queued(t, filepath.Join(f.Backing, "d", "x.lock.queue"), 1)[0]
	quiet(t, f, mine) // past its first looks: it waits in the line
	released := time.Now()
	if err := holder.Unlock(); err != nil { // hands the lock to the waiter
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("the waiter: %v: %s", err, w.out.String())
		}
		t.Logf("the waiter held the lock %v after the release (its own looks %v apart)", time.Since(released).Round(time.Millisecond), beat/2)
	case <-time.After(5 * beat):
		t.Fatalf("the waiter, behind a stuck head, did not take the lock handed to it within %v", 5*beat)
	}
}

// waitLineHeld waits until a waiter heads the line of the queue of the
// lock directory at path (W8): its file's flock is taken.
func waitLineHeld(t *testing.T, path string) {
	t.Helper()
	name := linePath(path, ".queue")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
			err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
			syscall.Close(fd) // and with it the flock, if it was taken
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiter headed the line (%s) within 20 s", name)
		}
	}
}
