//go:build linux

package faultfstest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/lockfile"
)

// mountAgain mounts a second view of f's backing directory: a second
// client of the same filesystem, whose changes the first's inotify does
// not see (and the reverse), as two hosts of one NFS export.
func mountAgain(t *testing.T, f *FS) *FS {
	t.Helper()
	g, err := Mount(f.Backing, t.TempDir(), Options{})
	if err != nil {
		t.Skip("cannot mount FUSE twice here: ", err)
	}
	t.Cleanup(func() {
		if err := g.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", g.Mount, err)
		}
	})
	return g
}

// TestLongWaiterGoesFirst (W7): a release wakes the waiters of its own
// client at once, while another client's learn of it by probing. A waiter
// there that has waited longer than the handoff window must still get the
// lock before a waiter that has just come, on the releaser's client;
// without W7 the woken one takes it nearly every time.
func TestLongWaiterGoesFirst(t *testing.T) {
	const window = 100 * time.Millisecond
	a := MountT(t, Options{})
	b := mountAgain(t, a)
	opts := []dotlock.Option{lockcore.WithHandoff(window), dotlock.WithPoll(time.Millisecond, 10*time.Millisecond)}
	handle := func(f *FS, more ...dotlock.Option) *dotlock.Mutex {
		l, err := lockfile.New(filepath.Join(f.Mount, "x.lock"), append(more, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	want := filepath.Join(a.Backing, "x.lock.want")
	// A hold that left first: W7 compares the mark with its record.
	warm := handle(b)
	if err := warm.TryLock(); err != nil {
		t.Fatal(err)
	}
	if err := warm.Unlock(); err != nil {
		t.Fatal(err)
	}
	const rounds = 3
	firsts := 0
	for round := range rounds {
		holder, long := handle(b), handle(a)
		if err := holder.TryLock(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		longGot, freshGot := make(chan error, 1), make(chan error, 1)
		go func() { longGot <- long.Lock(ctx) }()
		// The long waiter has waited past the window once it marks
		// P.want: its times move past the window's end.
		start := time.Now()
		for !marked(want, start.Add(window)) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("round %d: the waiter on the other client never marked %s", round, want)
			}
			time.Sleep(time.Millisecond)
		}
		blocked := make(chan struct{})
		fresh := handle(b, dotlock.WithOnWait(func(*dotlock.LockedError) {
			select {
			case <-blocked:
			default:
				close(blocked)
			}
		}))
		go func() { freshGot <- fresh.Lock(ctx) }()
		<-blocked
		if err := holder.Unlock(); err != nil {
			t.Fatal(err)
		}
		var first, second *dotlock.Mutex
		var rest chan error
		select {
		case err := <-longGot:
			if err != nil {
				t.Fatalf("round %d: long waiter: %v", round, err)
			}
			first, second, rest = long, fresh, freshGot
			firsts++
		case err := <-freshGot:
			if err != nil {
				t.Fatalf("round %d: fresh waiter: %v", round, err)
			}
			first, second, rest = fresh, long, longGot
		}
		if err := first.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := <-rest; err != nil {
			t.Fatalf("round %d: the second waiter: %v", round, err)
		}
		if err := second.Unlock(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	t.Logf("the long waiter on the other client went first in %d of %d rounds", firsts, rounds)
	if firsts < rounds-1 {
		t.Errorf("the waiter that waited long on the other client went first in %d of %d rounds, want %d at least (the fresh one on the releaser's client took it)", firsts, rounds, rounds-1)
	}
}

// marked reports whether name's modification time is after t.
func marked(name string, t time.Time) bool {
	st, err := os.Stat(name)
	return err == nil && st.ModTime().After(t)
}

// TestOnWaitAtOnce: on a network filesystem a waiter reports who holds
// the lock (OnWait) after its first looks, not after a quarter second of
// probes (W6's probes report nothing new): the try again once it watches
// the path is a whole look.
func TestOnWaitAtOnce(t *testing.T) {
	f := MountT(t, Options{})
	holder := holdFromBacking(t, f, ".")
	defer holder.Unlock()
	told := make(chan int, 1)
	l, err := lockfile.New(filepath.Join(f.Mount, "x.lock"), dotlock.WithOnWait(func(*dotlock.LockedError) {
		select {
		case told <- len(f.Faults()):
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	f.Set(1, Rule{Op: OpLookup, Name: "x.lock", Action: Delay}) // counts them
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Lock(ctx) }()
	looks := <-told
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Lock: %v, want context.Canceled", err)
	}
	t.Logf("OnWait after %d lookups of the lock", looks)
	if looks > 12 {
		t.Errorf("OnWait came after %d lookups of the lock: want it after the first looks (a few), not after probes", looks)
	}
}

// TestReturningReleaserSeesRemoteTaker (W4 on a network filesystem): a
// releaser that comes straight back gives way to an announced waiter; when
// the taker is on another client, which its inotify does not see, it
// looks at P while it gives way. Without those looks the window passed
// unseen, and it removed P.want as stale though a waiter had just been
// served (and others may have announced themselves there).
func TestReturningReleaserSeesRemoteTaker(t *testing.T) {
	a := MountT(t, Options{})
	b := mountAgain(t, a)
	opts := []dotlock.Option{lockcore.WithHandoff(500 * time.Millisecond), dotlock.WithPoll(time.Millisecond, 10*time.Millisecond)}
	blocked := make(chan struct{}, 1)
	releaser, err := lockfile.New(filepath.Join(b.Mount, "x.lock"), append(opts, dotlock.WithOnWait(func(*dotlock.LockedError) {
		select {
		case blocked <- struct{}{}:
		default:
		}
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := lockfile.New(filepath.Join(a.Mount, "x.lock"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := releaser.TryLock(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(ctx) }()
	for start := time.Now(); !marked(filepath.Join(a.Backing, "x.lock.want"), time.Time{}); { // announced
		if time.Since(start) > 10*time.Second {
			t.Fatal("the waiter never announced itself in P.want")
		}
		time.Sleep(time.Millisecond)
	}
	b.Set(1, Rule{Op: OpUnlink, Name: "x.lock.want", Action: Delay}) // counts them
	defer b.Clear()
	if err := releaser.Unlock(); err != nil {
		t.Fatal(err)
	}
	again := make(chan error, 1)
	go func() { again <- releaser.Lock(ctx) }()
	if err := <-got; err != nil {
		t.Fatalf("the waiter on the other client: %v", err)
	}
	<-blocked // the releaser gave way, then found the lock held
	if n := len(b.Faults()); n != 0 {
		t.Errorf("the returning releaser removed P.want %d times: it did not see the other client's waiter take the lock", n)
	}
	if err := waiter.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-again; err != nil {
		t.Fatalf("the releaser, again: %v", err)
	}
	releaser.Unlock()
}
