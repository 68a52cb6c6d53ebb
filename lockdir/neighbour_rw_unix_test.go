//go:build unix

package lockdir_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/google/uuid"
)

// What a neighbour plants beside or inside a shared lock's directory, or in
// its queue, is never dotlock's: these check that it neither stops what it
// should not stop, nor leaves a record naming this live process behind
// (which would hold the lock for as long as the process lives, after the
// neighbour's file is gone), nor makes a waiter spin. (A review's probes
// found each; the cases fail on the parent commit.)

func newNeighbourLock(t *testing.T, p string) *dotlock.RWMutex {
	t.Helper()
	l, err := lockdir.New(p, dotlock.WithGrace(200*time.Millisecond), dotlock.WithHeartbeat(50*time.Millisecond),
		dotlock.WithStaleAfter(2*time.Second), dotlock.WithPoll(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// plantThing puts a neighbour's kind of thing at path.
func plantThing(t *testing.T, path, kind string) {
	t.Helper()
	var err error
	switch kind {
	case "symlink":
		err = os.Symlink(filepath.Join(filepath.Dir(path), "elsewhere"), path)
	case "fifo":
		err = syscall.Mkfifo(path, 0o666)
	case "dir":
		err = os.Mkdir(path, 0o755)
	case "junk":
		err = os.WriteFile(path, []byte("hello from the neighbour\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// lockWithin checks that a new handle takes and releases the lock at p
// within a few seconds: nothing left behind holds it.
func lockWithin(t *testing.T, p, after string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	l := newNeighbourLock(t, p)
	if err := l.Lock(ctx); err != nil {
		names, _ := os.ReadDir(p)
		t.Fatalf("Lock %s: %v; in P: %v", after, err, names)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// A name in the queue that a record would have, on what is no record, is
// no waiter: TryLock on the free lock takes it. (It said "waiters are
// queued", for good, while the hand-on passed the entry over.)
func TestNeighbourQueueNameNoWaiter(t *testing.T) {
	for _, kind := range []string{"symlink", "fifo", "dir", "junk"} {
		t.Run(kind, func(t *testing.T) {
			p := filepath.Join(testdir.New(t), "x.lock")
			if err := os.Mkdir(p+".queue", 0o755); err != nil {
				t.Fatal(err)
			}
			plantThing(t, filepath.Join(p+".queue", "00000000000000000000.w."+uuid.NewString()), kind)
			l := newNeighbourLock(t, p)
			if err := l.TryLock(); err != nil {
				t.Fatalf("TryLock on a free lock beside a %s named like a queue record: %v", kind, err)
			}
			l.Unlock()
		})
	}
}

// A file at P.queue is no queue: it stops no one taking the lock, shared
// or not, and a shared hold's release is not reported failed (ErrNotLock)
// when it went through.
func TestNeighbourFileAtQueue(t *testing.T) {
	p := filepath.Join(testdir.New(t), "x.lock")
	l := newNeighbourLock(t, p)
	if err := l.TryRLock(); err != nil {
		t.Fatal(err)
	}
	plantThing(t, p+".queue", "junk")
	if err := l.RUnlock(); err != nil {
		t.Errorf("RUnlock with a file at P.queue: %v", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("P after RUnlock: %v", err)
	}
	if err := l.TryRLock(); err != nil {
		t.Errorf("TryRLock with a file at P.queue: %v", err)
	} else if err := l.RUnlock(); err != nil {
		t.Errorf("RUnlock: %v", err)
	}
}

// A neighbour's file at P.break while a reader holds: no guard can be had,
// but the reader's release still takes its record away, so that the lock
// is free once the file is gone.
func TestNeighbourGuardReaderLeaves(t *testing.T) {
	p := filepath.Join(testdir.New(t), "x.lock")
	l := newNeighbourLock(t, p)
	if err := l.TryRLock(); err != nil {
		t.Fatal(err)
	}
	plantThing(t, p+".break", "junk")
	t.Logf("RUnlock with a neighbour's P.break: %v", l.RUnlock())
	if err := os.Remove(p + ".break"); err != nil {
		t.Fatal(err)
	}
	lockWithin(t, p, "once the neighbour's P.break is gone")
}

// A queued waiter that gives up while a neighbour's file is at P.break
// takes its queue record away all the same: else, once the file is gone,
// the lock is handed to that record, which no one takes.
func TestNeighbourGuardWaiterLeaves(t *testing.T) {
	for _, writer := range []bool{true, false} {
		t.Run(fmt.Sprint("writer=", writer), func(t *testing.T) {
			p := filepath.Join(testdir.New(t), "x.lock")
			h := newNeighbourLock(t, p)
			if err := h.TryLock(); err != nil {
				t.Fatal(err)
			}
			w := newNeighbourLock(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				if writer {
					done <- w.Lock(ctx)
				} else {
					done <- w.RLock(ctx)
				}
			}()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if ents, _ := os.ReadDir(p + ".queue"); len(ents) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the waiter did not queue within 5 s")
				}
			}
			plantThing(t, p+".break", "junk")
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("the waiter took a held lock")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the waiter still waits 10 s on")
			}
			if err := h.Unlock(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p + ".break"); err != nil {
				t.Fatal(err)
			}
			lockWithin(t, p, "once the waiter left and the neighbour's P.break is gone")
		})
	}
}

// A live group whose anchor a neighbour replaced with an empty file: a
// waiter waits for the readers, without spinning (its repair's guard
// section woke it at once, again and again, until its context ended).
func TestNeighbourEmptyAnchorNoSpin(t *testing.T) {
	p := filepath.Join(testdir.New(t), "x.lock")
	h := newNeighbourLock(t, p)
	if err := h.TryRLock(); err != nil {
		t.Fatal(err)
	}
	defer h.RUnlock()
	if err := os.Remove(filepath.Join(p, "owner")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "owner"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"RLock", "Lock"} {
		l := newNeighbourLock(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start, cpu0 := time.Now(), cpuTime()
		var err error
		if op == "RLock" {
			err = l.RLock(ctx)
		} else {
			err = l.Lock(ctx)
		}
		cancel()
		took, cpu := time.Since(start), cpuTime()-cpu0
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want it to wait for the live reader until its context ends", op, err)
		}
		// A waiter that pauses between looks uses a few percent of a CPU.
		if cpu > took/2 {
			t.Errorf("%s spins: %v of CPU in %v", op, cpu.Round(time.Millisecond), took.Round(time.Millisecond))
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A neighbour's directory at P holding only what is named like a reader's
// record but is none: no group to repair. RLock says ErrNotLock rather
// than write an anchor into it (and hold it), and the directory is left as
// it was.
func TestNeighbourDirectoryNotRepaired(t *testing.T) {
	for _, kind := range []string{"symlink", "fifo", "dir", "junk"} {
		t.Run(kind, func(t *testing.T) {
			p := filepath.Join(testdir.New(t), "x.lock")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			plantThing(t, filepath.Join(p, "r."+uuid.NewString()), kind)
			before, err := os.ReadDir(p)
			if err != nil {
				t.Fatal(err)
			}
			l := newNeighbourLock(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.RLock(ctx); !errors.Is(err, dotlock.ErrNotLock) {
				if err == nil {
					l.RUnlock()
				}
				t.Errorf("RLock on a neighbour's directory holding a %s named like a reader's record: %v, want ErrNotLock", kind, err)
			}
			after, err := os.ReadDir(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) || after[0].Name() != before[0].Name() {
				t.Errorf("the neighbour's directory changed: %v, was %v", after, before)
			}
		})
	}
}
