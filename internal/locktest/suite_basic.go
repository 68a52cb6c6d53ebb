package locktest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// testBasic: take, contend, release, Owner, on two handles of one path.
func testBasic(t *testing.T, k Kind) {
	e := newInproc(t, k)
	id, err := stale.LocalIdentity()
	if err != nil {
		t.Fatal(err)
	}

	// A relative path names the same lock; errors carry the absolute path.
	var a Locker
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, e.path); err == nil && !filepath.IsAbs(rel) {
			a = e.openAt(rel, lockcore.WithHeartbeat(20*time.Millisecond))
		}
	}
	if a == nil {
		a = e.open(lockcore.WithHeartbeat(20 * time.Millisecond))
	}
	if a.Path() != e.path {
		t.Errorf("Path() = %q, want %q", a.Path(), e.path)
	}
	b := e.open()

	if _, err := a.Owner(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Owner() of a free lock: %v, want an error matching fs.ErrNotExist", err)
	} else {
		wantPathErr(t, err, e.path)
	}

	if err := a.TryLock(); err != nil {
		t.Fatalf("TryLock on a free lock: %v", err)
	}
	tok := a.Token()
	mine := e.holds(a)
	if mine.UUID == "" || mine.Host != id.Host || mine.BootID != id.BootID || mine.Mode != stale.ModeExclusive {
		t.Errorf("record %+v does not describe this process's exclusive hold", mine)
	}

	// A second handle is refused, and told who holds.
	err = b.TryLock()
	le := wantLockedBy(t, err, e.path, mine.UUID)
	if le.Owners[0].PID != os.Getpid() || le.Owners[0].Token != tok {
		t.Errorf("LockedError names %v, want pid %d token %d", le.Owners[0], os.Getpid(), tok)
	}
	if b.Token() != 0 {
		t.Errorf("refused handle has token %d", b.Token())
	}
	// The holding handle itself is refused a second hold.
	wantLocked(t, a.TryLock(), e.path)
	// A handle that holds nothing cannot release another's hold.
	if err := b.Unlock(); !errors.Is(err, lockcore.ErrNotHeld) {
		t.Errorf("Unlock on a handle holding nothing: %v, want ErrNotHeld", err)
	} else {
		wantPathErr(t, err, e.path)
	}

	// Owner() from either handle is the hold's record; the heartbeat
	// advances while the UUID and token stay.
	deadline := time.Now().Add(ipPatience)
	for {
		o, err := b.Owner()
		if err != nil {
			t.Fatalf("Owner() while held: %v", err)
		}
		if o.UUID != mine.UUID || o.Token != a.Token() || o.PID != os.Getpid() {
			t.Fatalf("Owner() = %v (uuid %s), want the hold's record %s, token %d", o, o.UUID, mine.UUID, a.Token())
		}
		if o.Beat > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat did not advance within %v (WithHeartbeat 20ms)", ipPatience)
		}
		time.Sleep(5 * time.Millisecond) // polling for the heartbeat, bounded by deadline
	}

	if err := a.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := a.Unlock(); !errors.Is(err, lockcore.ErrNotHeld) {
		t.Errorf("second Unlock: %v, want ErrNotHeld", err)
	} else {
		wantPathErr(t, err, e.path)
	}
	if _, err := a.Owner(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Owner() after Unlock: %v, want fs.ErrNotExist", err)
	}
	// The release published the hold in P.last and left nothing else.
	if last, err := os.ReadFile(e.path + ".last"); err != nil {
		t.Errorf("after release: %v", err)
	} else if o, err := stale.Parse(last); err != nil || o.UUID != mine.UUID || o.Token != tok {
		t.Errorf("%s.last holds %v (%v), want the released hold %s", e.path, o, err, mine.UUID)
	}
	wantOnly(t, e.dir, "x.lock.last")

	if err := b.TryLock(); err != nil {
		t.Fatalf("TryLock after release: %v", err)
	}
	if b.Token() <= tok {
		t.Errorf("next token %d, want > %d", b.Token(), tok)
	}
	e.holds(b)
	if err := b.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func (e *inproc) openAt(path string, opts ...lockcore.Option) Locker {
	e.t.Helper()
	l, err := e.k.New(path, opts...)
	if err != nil {
		e.t.Fatalf("New(%s): %v", path, err)
	}
	e.t.Cleanup(func() { l.Unlock() })
	return l
}

// testTokens: fencing tokens grow across handles, crashes and takeovers.
func testTokens(t *testing.T, k Kind) {
	e := newInproc(t, k)
	hs := []Locker{e.open(), e.open()}
	var prev uint64
	for i := range 20 {
		h := hs[i%2]
		if err := h.TryLock(); err != nil {
			t.Fatalf("acquisition %d: %v", i, err)
		}
		tok := h.Token()
		if tok <= prev {
			t.Fatalf("acquisition %d: token %d after %d, want strictly increasing", i, tok, prev)
		}
		prev = tok
		if err := h.Unlock(); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}

	// A holder crashed with token 1000: its successor's token follows it.
	dead, rec := e.record(1000, func(o *stale.Owner) { o.PID = freePID(t) })
	e.plant(rec)
	if err := hs[0].TryLock(); err != nil {
		t.Fatalf("TryLock over a crashed holder: %v", err)
	}
	if got := hs[0].Token(); got != dead.Token+1 {
		t.Errorf("token after a crashed holder's %d: %d, want %d", dead.Token, got, dead.Token+1)
	}
	prev = hs[0].Token()
	if err := hs[0].Unlock(); err != nil {
		t.Fatal(err)
	}

	// P.last is the only memory of earlier holds. Removing it (outside the
	// protocol: by hand, or by a cleanup job) loses that memory. This is a
	// limitation, documented here, not a behaviour to rely on: the test
	// only logs what happens, and checks that a token is still issued.
	if err := os.Remove(e.path + ".last"); err != nil {
		t.Fatal(err)
	}
	if err := hs[1].TryLock(); err != nil {
		t.Fatalf("TryLock after removing %s.last: %v", e.path, err)
	}
	got := hs[1].Token()
	if got == 0 {
		t.Errorf("no token issued after removing %s.last", e.path)
	}
	if got <= prev {
		t.Logf("LIMITATION: after %s.last was removed by hand, the next token is %d although %d was issued before: tokens are monotonic only while P.last survives", filepath.Base(e.path), got, prev)
	}
	if err := hs[1].Unlock(); err != nil {
		t.Fatal(err)
	}
}

// testNotHeld: Lost and Token of a handle that holds nothing.
func testNotHeld(t *testing.T, k Kind) {
	e := newInproc(t, k)
	l := e.open()
	check := func(when string) {
		t.Helper()
		select {
		case <-l.Lost():
		default:
			t.Errorf("%s: Lost() is not closed", when)
		}
		if tok := l.Token(); tok != 0 {
			t.Errorf("%s: Token() = %d, want 0", when, tok)
		}
	}
	check("new handle")
	if err := l.Unlock(); !errors.Is(err, lockcore.ErrNotHeld) {
		t.Errorf("Unlock on a new handle: %v, want ErrNotHeld", err)
	}
	if err := l.TryLock(); err != nil {
		t.Fatal(err)
	}
	lost := l.Lost()
	select {
	case <-lost:
		t.Fatalf("Lost() closed while held")
	default:
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	check("after Unlock")
	// Refused: still holds nothing.
	other := e.open()
	if err := other.TryLock(); err != nil {
		t.Fatal(err)
	}
	wantLocked(t, l.TryLock(), e.path)
	check("after a refused TryLock")
	if err := lockFor(l, 50*time.Millisecond); err != context.DeadlineExceeded {
		t.Errorf("Lock against a holder: %v, want context.DeadlineExceeded", err)
	}
	check("after a timed-out Lock")
}

// testContext: Lock honours its context, and a timed-out wait leaves the
// holder alone.
func testContext(t *testing.T, k Kind) {
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		l := e.open()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := snapshot(t, e.dir)
		err := l.Lock(ctx)
		if err != ctx.Err() || !errors.Is(err, context.Canceled) {
			t.Errorf("Lock(cancelled ctx) = %v (%T), want ctx.Err() itself", err, err)
		}
		if after := snapshot(t, e.dir); after != before {
			t.Errorf("Lock with a cancelled context touched the disk:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if l.Token() != 0 {
			t.Errorf("holds after a cancelled Lock")
		}
		// Also when the lock is held by another handle.
		h := e.open()
		if err := h.TryLock(); err != nil {
			t.Fatal(err)
		}
		before = snapshot(t, e.dir)
		if err := l.Lock(ctx); err != ctx.Err() {
			t.Errorf("Lock(cancelled ctx) on a held lock = %v, want ctx.Err() itself", err)
		}
		if after := snapshot(t, e.dir); after != before {
			t.Errorf("Lock with a cancelled context touched the disk:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("Deadline", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		a, b := e.open(), e.open()
		if err := a.TryLock(); err != nil {
			t.Fatal(err)
		}
		held := e.holds(a)
		var waits int
		b2 := e.open(lockcore.WithOnWait(func(*lockcore.LockedError) { waits++ }))
		for _, l := range []Locker{b, b2} {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), ipShort)
			err := l.Lock(ctx)
			elapsed := time.Since(start)
			if err != context.DeadlineExceeded || err != ctx.Err() {
				t.Errorf("Lock until a deadline = %v (%T), want context.DeadlineExceeded itself", err, err)
			}
			cancel()
			if elapsed < ipShort {
				t.Errorf("Lock gave up after %v, before its deadline %v", elapsed, ipShort)
			}
			if l.Token() != 0 {
				t.Errorf("a timed-out Lock holds token %d", l.Token())
			}
		}
		if waits == 0 {
			t.Errorf("WithOnWait was never told who is in the way")
		}
		if o := e.holds(a); o.UUID != held.UUID {
			t.Errorf("holder's record changed to %s", o.UUID)
		}
		if err := a.Unlock(); err != nil {
			t.Errorf("holder's Unlock after others timed out: %v", err)
		}
	})
	t.Run("CancelWhileWaiting", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		a := e.open()
		if err := a.TryLock(); err != nil {
			t.Fatal(err)
		}
		held := e.holds(a)
		waiting := make(chan struct{})
		var once sync.Once
		b := e.open(lockcore.WithOnWait(func(*lockcore.LockedError) { once.Do(func() { close(waiting) }) }))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := make(chan error, 1)
		go func() { res <- b.Lock(ctx) }()
		select {
		case <-waiting:
		case err := <-res:
			t.Fatalf("Lock returned %v before waiting", err)
		case <-time.After(ipPatience):
			t.Fatalf("waiter never reported waiting")
		}
		cancel()
		select {
		case err := <-res:
			if err != context.Canceled {
				t.Errorf("Lock cancelled while waiting = %v (%T), want context.Canceled itself", err, err)
			}
		case <-time.After(ipPatience):
			t.Fatalf("Lock did not return within %v of its context's cancellation", ipPatience)
		}
		if b.Token() != 0 {
			t.Errorf("cancelled waiter holds token %d", b.Token())
		}
		if o := e.holds(a); o.UUID != held.UUID {
			t.Errorf("holder's record changed to %s", o.UUID)
		}
		if err := a.Unlock(); err != nil {
			t.Fatal(err)
		}
		// The waiter that gave up left nothing behind, and the lock is free.
		wantOnly(t, e.dir, "x.lock.last")
		if err := b.TryLock(); err != nil {
			t.Errorf("TryLock after the holder left: %v", err)
		}
	})
	t.Run("SameHandle", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		l := e.open()
		if err := l.TryLock(); err != nil {
			t.Fatal(err)
		}
		// A goroutine waiting on the handle another goroutine holds is
		// bounded by its context too.
		err := within(t, ipPatience, "Lock on a held handle", func() error { return lockFor(l, ipShort) })
		if err != context.DeadlineExceeded {
			t.Errorf("Lock on the held handle = %v, want context.DeadlineExceeded", err)
		}
		e.holds(l)
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	})
}
