package locktest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// testGoroutines: goroutines of one process exclude each other, whether
// they share one handle or each have their own. The protected state is a
// counter in a file on disk, which only the lock protects.
func testGoroutines(t *testing.T, k Kind) {
	const n, m = 8, 15
	run := func(t *testing.T, handle func(e *inproc, i int) Locker) {
		e := newInproc(t, k)
		counter := filepath.Join(e.dir, "counter")
		if err := os.WriteFile(counter, []byte("0"), 0o644); err != nil {
			t.Fatal(err)
		}
		handles := make([]Locker, n)
		for i := range handles {
			handles[i] = handle(e, i)
		}
		var inside atomic.Int32
		var lastToken atomic.Uint64
		ctx, cancel := context.WithTimeout(context.Background(), 5*ipPatience)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		report := func(err error) {
			select {
			case errs <- err:
			default: // enough reported
			}
		}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := handles[i]
				for range m {
					if err := l.Lock(ctx); err != nil {
						report(err)
						return
					}
					if in := inside.Add(1); in != 1 {
						report(errors.New(strconv.Itoa(int(in)) + " goroutines inside the lock at once"))
					}
					tok := l.Token()
					if prev := lastToken.Swap(tok); tok <= prev {
						report(errors.New("token " + strconv.FormatUint(tok, 10) + " after " + strconv.FormatUint(prev, 10)))
					}
					if err := increment(counter); err != nil {
						report(err)
					}
					inside.Add(-1)
					if err := l.Unlock(); err != nil {
						report(err)
						return
					}
				}
			}()
		}
		waitAll(t, &wg, "the goroutines")
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		b, err := os.ReadFile(counter)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != strconv.Itoa(n*m) {
			t.Errorf("counter = %s, want %d: increments were lost", got, n*m)
		}
		wantOnly(t, e.dir, "counter", "x.lock.last")
	}
	t.Run("SharedHandle", func(t *testing.T) {
		t.Parallel()
		var shared Locker
		run(t, func(e *inproc, i int) Locker {
			if shared == nil {
				shared = e.open()
			}
			return shared
		})
	})
	t.Run("HandleEach", func(t *testing.T) {
		t.Parallel()
		run(t, func(e *inproc, i int) Locker { return e.open() })
	})
}

// testRacing: many handles rush one stale lock at once. One wins; the
// others see it held by the winner, and none of them removes the winner's
// lock on the strength of the stale verdict they reached earlier.
func testRacing(t *testing.T, k Kind) {
	const handles = 16
	rounds := windowsFewer(20, 4)
	e := newInproc(t, k)
	ls := make([]Locker, handles)
	for i := range ls {
		ls[i] = e.open()
	}
	dead := freePID(t)
	token := uint64(100)
	plantDead := func() string {
		t.Helper()
		o, rec := e.record(token, func(o *stale.Owner) { o.PID = dead })
		e.plant(rec)
		return o.UUID
	}
	// rush runs f on every handle at once and returns the results.
	rush := func(f func(Locker) error) []error {
		start := make(chan struct{})
		errs := make([]error, len(ls))
		var wg sync.WaitGroup
		for i, l := range ls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = f(l)
			}()
		}
		close(start)
		waitAll(t, &wg, "the contenders")
		return errs
	}
	for round := range rounds {
		// TryLock: exactly one winner, whose lock all others respect.
		victim := plantDead()
		errs := rush(func(l Locker) error { return l.TryLock() })
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: handles %d and %d both won", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, lockcore.ErrLocked):
				t.Fatalf("round %d: TryLock: %v", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no handle took the stale lock (errors: %v)", round, errs)
		}
		w := ls[winner]
		if w.Token() != token+1 {
			t.Errorf("round %d: winner's token %d, want %d (the dead holder's + 1)", round, w.Token(), token+1)
		}
		won := e.holds(w)
		if won.UUID == victim {
			t.Fatalf("round %d: the dead record is still at the path", round)
		}
		for i, l := range ls {
			if i != winner {
				wantLockedBy(t, l.TryLock(), e.path, won.UUID)
			}
		}
		if o := e.holds(w); o.UUID != won.UUID {
			t.Fatalf("round %d: winner's record replaced by %s", round, o.UUID)
		}
		if err := w.Unlock(); err != nil {
			t.Fatalf("round %d: winner's Unlock: %v", round, err)
		}
		wantOnly(t, e.dir, "x.lock.last")
		token += 10

		// Lock: all get it, one at a time, each finding its own record
		// at the path while inside.
		plantDead()
		var inside atomic.Int32
		var lastToken atomic.Uint64
		ctx, cancel := context.WithTimeout(context.Background(), 5*ipPatience)
		var bad atomic.Value
		fail := func(s string) { bad.CompareAndSwap(nil, s) }
		errs = rush(func(l Locker) error {
			if err := l.Lock(ctx); err != nil {
				return err
			}
			if inside.Add(1) != 1 {
				fail("two handles inside at once")
			}
			tok := l.Token()
			if prev := lastToken.Swap(tok); tok <= prev {
				fail("token " + strconv.FormatUint(tok, 10) + " after " + strconv.FormatUint(prev, 10))
			}
			if b, err := os.ReadFile(e.recordPath()); err != nil {
				fail("record while inside: " + err.Error())
			} else if o, err := stale.Parse(b); err != nil || o.Token != tok {
				fail("record at the path while inside is not the holder's: " + strings.TrimSpace(string(b)))
			}
			inside.Add(-1)
			return l.Unlock()
		})
		cancel()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: handle %d: %v (all: %v)\ndirectory:\n%s", round, i, err, errs, snapshot(t, e.dir))
			}
		}
		if s := bad.Load(); s != nil {
			t.Fatalf("round %d: %s", round, s)
		}
		if got := lastToken.Load(); got != token+handles {
			t.Errorf("round %d: last token %d, want %d (dead holder's %d + %d holds)", round, got, token+handles, token, handles)
		}
		wantOnly(t, e.dir, "x.lock.last")
		token += 100
	}
}

// increment reads the number in file, and writes it back plus one: a lost
// update if two do it at once.
func increment(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c, err := strconv.Atoi(string(b))
	if err != nil {
		return err
	}
	return os.WriteFile(file, []byte(strconv.Itoa(c+1)), 0o644)
}

// waitAll waits for wg, failing the test if that takes longer than any
// correct implementation could need (a deadlock, say).
func waitAll(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * ipPatience):
		t.Fatalf("%s did not finish within %v: deadlock?", what, 10*ipPatience)
	}
}
