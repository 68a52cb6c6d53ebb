//go:build linux

package faultfstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// lookups counts the lookups of the lock's name that reach the
// filesystem (with its caches off, every attempt's create, open and stat
// of it) while n waiters wait for a held lock for a while.
func lookups(t *testing.T, f *FS, path string, n int, wait time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		l, err := lockfile.New(path)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Lock(ctx); err != context.Canceled {
				errs <- err
			}
		}()
	}
	f.Set(1, Rule{Op: OpLookup, Name: "x.lock", Action: Delay}) // counts them
	time.Sleep(wait)
	count := len(f.Faults())
	f.Clear()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a waiter's Lock returned %v, want context.Canceled", err)
	}
	return count
}

// waiterEnv makes the test binary a waiter process: it waits for the
// lock file named there until it is killed.
const waiterEnv = "FAULTFSTEST_WAITER"

// waiterDirEnv makes the waiter wait for a lock directory instead, with a
// heartbeat period of its value, and exit 0 once it holds it.
const waiterDirEnv = "FAULTFSTEST_WAITER_DIR"

func TestMain(m *testing.M) {
	if path := os.Getenv(waiterEnv); path != "" {
		var l dotlock.Locker
		beat, err := time.ParseDuration(os.Getenv(waiterDirEnv))
		switch {
		case err == nil:
			l, err = lockdir.New(path, dotlock.WithStaleAfter(4*beat), dotlock.WithHeartbeat(beat))
		default:
			l, err = lockfile.New(path)
		}
		if err == nil {
			err = l.Lock(context.Background())
		}
		fmt.Println("Lock returned:", err) // for a lock file, a failure: the test kills it first
		if err == nil && os.Getenv(waiterDirEnv) != "" {
			os.Exit(0)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// lookupsOfProcesses is lookups with each waiter a process of its own,
// as the waiters of a host are: their line is a flock between processes.
func lookupsOfProcesses(t *testing.T, f *FS, path string, n int, wait time.Duration) int {
	t.Helper()
	var procs []*exec.Cmd
	outs := make([]*strings.Builder, n)
	for i := range n {
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), waiterEnv+"="+path)
		outs[i] = &strings.Builder{}
		c.Stdout, c.Stderr = outs[i], outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, c)
	}
	f.Set(1, Rule{Op: OpLookup, Name: "x.lock", Action: Delay}) // counts them
	time.Sleep(wait)
	count := len(f.Faults())
	f.Clear()
	for i, c := range procs {
		c.Process.Kill()
		if err := c.Wait(); err == nil || c.ProcessState.ExitCode() != -1 {
			t.Fatalf("waiter process %d ended by itself (%v): %s", i, err, outs[i])
		}
	}
	return count
}

// holdFromBacking takes the lock through the backing directory, as a
// holder on another client would: its release is not seen by this
// client's change notification.
func holdFromBacking(t *testing.T, f *FS, dir string) *dotlock.Mutex {
	t.Helper()
	return tryFromBacking(t, f, dir, func(p string) (*dotlock.Mutex, error) { return lockfile.New(p) })
}

// tryFromBacking opens dir/x.lock in the backing directory with open and
// takes it.
func tryFromBacking[L interface{ TryLock() error }](t *testing.T, f *FS, dir string, open func(string) (L, error)) L {
	t.Helper()
	h, err := open(filepath.Join(f.Backing, dir, "x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.TryLock(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHostLineBoundsLooks: on a network filesystem the waiters of one
// host for one lock take turns at polling the server (W6). Six waiters
// must not look much more often than one: each of the others looks only
// once a heartbeat period (7.5 s by default). The waiters are goroutines
// with a handle each, then processes, as a host's waiters are: their
// line is a flock between processes.
func TestHostLineBoundsLooks(t *testing.T) {
	for _, c := range []struct {
		waiters string
		count   func(t *testing.T, f *FS, path string, n int, wait time.Duration) int
	}{{"goroutines", lookups}, {"processes", lookupsOfProcesses}} {
		t.Run(c.waiters, func(t *testing.T) {
			f := MountT(t, Options{})
			if err := os.Mkdir(filepath.Join(f.Backing, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			holder := holdFromBacking(t, f, "d")
			defer holder.Unlock()
			path := filepath.Join(f.Mount, "d", "x.lock")
			const wait = 1500 * time.Millisecond
			one := c.count(t, f, path, 1, wait)
			six := c.count(t, f, path, 6, wait)
			t.Logf("lookups of the lock in %v: one waiter %d, six waiters %d (%s)", wait, one, six, c.waiters)
			if one == 0 {
				t.Fatal("a waiter did not look at the lock at all")
			}
			if six > 2*one {
				t.Errorf("six waiters (%s) looked %d times where one looked %d: want at most twice one's (one poller per host)", c.waiters, six, one)
			}
		})
	}
}

// linePath is the file of the host line of the lock at path (W6; W8's
// with suffix ".queue").
func linePath(path, suffix string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(os.TempDir(), "dotlock-lines-"+strconv.Itoa(os.Geteuid()), hex.EncodeToString(sum[:16])+suffix)
}

// takeLineHead heads the host line of the lock at path itself, as a head
// that never looks: the waiters all follow it.
func takeLineHead(t *testing.T, path, suffix string) *os.File {
	t.Helper()
	name := linePath(path, suffix)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	head, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(head.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		head.Close()
		t.Fatal(err)
	}
	return head
}

// TestHostLineStuckHead: a head that never looks (here: the test holds
// its flock) delays the others by at most a heartbeat period, as each
// then looks itself; a release this client does not see still reaches
// them.
func TestHostLineStuckHead(t *testing.T) {
	f := MountT(t, Options{})
	if err := os.Mkdir(filepath.Join(f.Backing, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	holder := holdFromBacking(t, f, "d")
	path := filepath.Join(f.Mount, "d", "x.lock")
	defer takeLineHead(t, path, "").Close()
	const beat = 300 * time.Millisecond
	l, err := lockfile.New(path, dotlock.WithStaleAfter(4*beat), dotlock.WithHeartbeat(beat))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*beat)
	defer cancel()
	f.Set(1, Rule{Op: OpRead, Name: "x.lock", Action: Delay}) // counts the waiter's looks
	defer f.Clear()
	got := make(chan error, 1)
	go func() { got <- l.Lock(ctx) }()
	// Once the waiter has read the holder's record twice (its first
	// look, and the look again once it watches the path), it is blocked
	// and follows the stuck head. The holder leaves through the backing
	// directory, unseen by this client.
	for len(got) == 0 && len(f.Faults()) < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Lock behind a stuck head of its host's line: %v (want the lock within a heartbeat period or two)", err)
	}
	l.Unlock()
}
