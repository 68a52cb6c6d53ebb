package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// An empty record is "being written" until it has stayed unchanged for the
// grace period. One that is seen, goes, and is seen again later is a new
// record being written, not one unchanged since the first look: judged
// stale at first sight, a new guard was moved aside (its creator then
// found it gone, gave up, and the guard, put back, stood in everyone's way
// for the guard's lease) and a lock being created was broken.
func TestEmptyRecordSeenAgainIsNew(t *testing.T) {
	const grace = time.Second
	newLock := func(t *testing.T) (*Lock, *stepClock, *waitState) {
		clk := &stepClock{t: time.Now()}
		path := filepath.Join(testdir.New(t), "x.lock")
		l := newFileLock(t, path, WithClock(clk), WithGrace(grace))
		return l, clk, l.newWaitState()
	}
	empty := func(t *testing.T, name string) {
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("Guard", func(t *testing.T) {
		l, clk, ws := newLock(t)
		guard := l.guard.Path()
		empty(t, guard)
		if broke, err := l.guardStale(ws); broke || err != nil {
			t.Fatalf("guardStale of an empty guard seen once = %v, %v; want false (being written)", broke, err)
		}
		if err := os.Remove(guard); err != nil {
			t.Fatal(err)
		}
		if broke, err := l.guardStale(ws); !broke || err != nil {
			t.Fatalf("guardStale with no guard = %v, %v; want true (free)", broke, err)
		}
		clk.add(2 * grace)
		empty(t, guard)
		if broke, err := l.guardStale(ws); broke || err != nil {
			t.Errorf("guardStale of a new empty guard = %v, %v; want false (being written)", broke, err)
		}
		if _, err := os.Lstat(guard); err != nil {
			t.Errorf("the new empty guard was moved: %v", err)
		}
	})

	t.Run("Holder", func(t *testing.T) {
		l, clk, ws := newLock(t)
		path := l.store.Path()
		empty(t, path)
		ctx := context.Background()
		if blk, err := l.inspect(ctx, ws); blk == nil || err != nil {
			t.Fatalf("inspect of an empty record seen once = %v, %v; want it blocking (being written)", blk, err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if blk, err := l.inspect(ctx, ws); blk != nil || err != nil {
			t.Fatalf("inspect with no record = %v, %v; want free", blk, err)
		}
		clk.add(2 * grace)
		empty(t, path)
		if blk, err := l.inspect(ctx, ws); blk == nil || err != nil {
			t.Errorf("inspect of a new empty record = %v, %v; want it blocking (being written)", blk, err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the new empty record was broken: %v", err)
		}
	})
}

// Tries carry what they watched to the next try (tryState), but not an
// empty record across a gap longer than half the grace period: the record
// seen then may have gone and another, being written now, stand in its
// place. Found in TestFaultRegressions (rw seed 436, once in CI): a guard
// left empty by a create whose reply was lost, seen by a try, aged the
// next empty guard. Tries closer together than that reclaim an empty
// record that stands for the grace period, as a wait does.
func TestEmptyRecordAcrossTries(t *testing.T) {
	const grace = time.Second
	clk := &stepClock{t: time.Now()}
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newFileLock(t, path, WithClock(clk), WithGrace(grace))
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.TryLock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock with an empty record = %v; want ErrLocked (being written)", err)
	}
	clk.add(grace/2 + time.Millisecond) // another empty record may stand there by now
	if err := l.TryLock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock %v after a try saw an empty record = %v; want ErrLocked (it may be another, being written)", grace/2, err)
	}
	for n := 1; ; n++ {
		clk.add(grace / 4)
		err := l.TryLock()
		switch {
		case n < 4 && err != nil && errors.Is(err, ErrLocked):
		case n < 4:
			t.Fatalf("TryLock %v after the last gap = %v; want ErrLocked: the record was not watched for the grace period (%v)", time.Duration(n)*grace/4, err, grace)
		case err == nil:
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			return
		case n > 4 || !errors.Is(err, ErrLocked):
			t.Fatalf("TryLock every %v, %v after the last gap: %v; want the empty record reclaimed after the grace period (%v)", grace/4, time.Duration(n)*grace/4, err, grace)
		}
	}
}

// An observation kept in a handle between calls (another user's guard,
// an unreadable P.last) forgets content that names no writer after a gap
// longer than half the grace period, and keeps a record's.
func TestKeptObsForgetsUnnamed(t *testing.T) {
	const gap = time.Second
	t0 := time.Now()
	rec, err := stale.Self(7, stale.ModeBreaker, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  []byte
		kept bool
	}{
		{"empty", nil, false},
		{"partial", rec.Marshal()[:40], false},
		{"NUL", make([]byte, 1024), false},
		{"record", rec.Marshal(), true},
	} {
		var k keptObs
		k.resume(t0, gap).See(string(c.key), t0)
		if got := k.resume(t0.Add(gap), gap).See(string(c.key), t0.Add(gap)); got != gap {
			t.Errorf("%s: after a gap of %v (the longest kept) the age is %v, want %v", c.name, gap, got, gap)
		}
		at := t0.Add(2*gap + 1)
		want := time.Duration(0)
		if c.kept {
			want = at.Sub(t0)
		}
		if got := k.resume(at, gap).See(string(c.key), at); got != want {
			t.Errorf("%s: after a gap of %v the age is %v, want %v", c.name, gap+1, got, want)
		}
	}
}

// rename replaces what stands at its target, as rename(2) does, even while
// another process has that file open (a contender reading the record):
// putting back a record moved by mistake (B4) depends on it. Windows
// refuses such a replacement with "Access denied" unless the file in the
// way is moved aside first.
func TestRenameReplacesOpenFile(t *testing.T) {
	dir := testdir.New(t)
	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	if err := os.WriteFile(from, []byte("moved back"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, []byte("created meanwhile"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openFile(to, os.O_RDONLY, 0) // as readRecord opens a record
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rename(from, to); err != nil {
		t.Fatalf("rename onto a file open elsewhere: %v", err)
	}
	if got, err := os.ReadFile(to); err != nil || string(got) != "moved back" {
		t.Errorf("after rename the target holds %q, %v; want %q", got, err, "moved back")
	}
	if _, err := os.Lstat(from); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the source is still there after rename: %v", err)
	}
}

// rename moves a directory that another process is listing: the last
// reader's release moves its lock directory aside (a stray file left in
// it). Windows refuses with a sharing violation while any handle to the
// directory is open without sharing it for deletion, as a listing's is;
// that is brief, and rename waits it out. (Seen under Wine: RUnlock failed
// with "rename x.lock x.lock.gone.…: Sharing violation".)
func TestRenameWaitsOutListing(t *testing.T) {
	dir := testdir.New(t)
	from, to := filepath.Join(dir, "x.lock"), filepath.Join(dir, "x.lock.gone")
	if err := os.Mkdir(from, 0o755); err != nil {
		t.Fatal(err)
	}
	listing, err := os.Open(from) // as readDirNames opens it
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		time.Sleep(50 * time.Millisecond) // the listing's length, not synchronisation
		listing.Close()
	}()
	err = rename(from, to)
	<-closed
	if err != nil {
		t.Fatalf("rename of a directory while it is being listed: %v", err)
	}
	if st, err := os.Lstat(to); err != nil || !st.IsDir() {
		t.Errorf("after rename the target: %v, %v; want the directory", st, err)
	}
}
