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

// An empty record replaced by another empty one between two looks is a
// new record being written, even though no look saw the path free: the
// bytes are the same, the file is not (unnamedKey). Unseen replacements
// happen between a handle's tries (which carry what they watched to the
// next), and within a wait between looks far apart (behind a host line).
// Found in TestFaultRegressions (rw seed 436, once in CI): a guard left
// empty by a create whose reply was lost, watched for a while, made a
// later guard — empty for the moment its maker took to write it — stale at
// first sight. The same empty file standing on is still reclaimed after
// the grace period, however far apart the looks.
func TestEmptyRecordReplacedUnseen(t *testing.T) {
	const grace = time.Second
	newLock := func(t *testing.T) (*Lock, *stepClock) {
		clk := &stepClock{t: time.Now()}
		path := filepath.Join(testdir.New(t), "x.lock")
		return newFileLock(t, path, WithClock(clk), WithGrace(grace)), clk
	}
	// replace puts another file at name, with times of its own
	// (the new file might otherwise get the old one's inode and, within a
	// clock tick, its times).
	replace := func(t *testing.T, name string, data []byte) {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(name, later, later); err != nil {
			t.Fatal(err)
		}
	}
	mustStand := func(t *testing.T, name string) {
		t.Helper()
		if fi, err := os.Lstat(name); err != nil || fi.Size() != 0 {
			t.Fatalf("the new empty record was broken: %v", err)
		}
	}

	t.Run("Tries", func(t *testing.T) {
		l, clk := newLock(t)
		path := l.store.Path()
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := l.TryLock(); !errors.Is(err, ErrLocked) {
			t.Fatalf("TryLock with an empty record = %v; want ErrLocked (being written)", err)
		}
		replace(t, path, nil)
		clk.add(2 * grace)
		if err := l.TryLock(); !errors.Is(err, ErrLocked) {
			t.Fatalf("TryLock after the empty record was replaced by another = %v; want ErrLocked (being written)", err)
		}
		mustStand(t, path)
		clk.add(grace)
		if err := l.TryLock(); err != nil {
			t.Fatalf("TryLock after the same empty record stood for the grace period (%v) = %v; want it reclaimed", grace, err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	})

	// A last-record slot that reads as NULs (a network filesystem's client
	// that knows its size, not its data) is waited on for the grace
	// period, then taken for planted garbage and its token ignored (P7
	// rests on that never happening to a real record): every padded
	// record reads as the same NULs, so only the file tells them apart.
	t.Run("Last", func(t *testing.T) {
		l, clk := newLock(t)
		last := lastSlot(l.store.Path(), 0)
		nul := make([]byte, stale.PaddedSize)
		if err := os.WriteFile(last, nul, 0o644); err != nil {
			t.Fatal(err)
		}
		var ob stale.Observation
		if tok, err := l.lastToken(l.store, &ob); err == nil {
			t.Fatalf("lastToken with P.last all NULs = %d; want an error (unreadable for now)", tok)
		}
		replace(t, last, nul)
		clk.add(2 * grace)
		if tok, err := l.lastToken(l.store, &ob); err == nil {
			t.Fatalf("lastToken with another P.last all NULs, seen once = %d; want an error (unreadable for now)", tok)
		}
		clk.add(grace)
		if tok, err := l.lastToken(l.store, &ob); err != nil || tok != 0 {
			t.Fatalf("lastToken with the same NULs for the grace period = %d, %v; want 0 (garbage ignored)", tok, err)
		}
	})

	t.Run("Guard", func(t *testing.T) {
		l, clk := newLock(t)
		ws := l.newWaitState()
		guard := l.guard.Path()
		if err := os.WriteFile(guard, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if broke, err := l.guardStale(ws); broke || err != nil {
			t.Fatalf("guardStale of an empty guard seen once = %v, %v; want false (being written)", broke, err)
		}
		replace(t, guard, nil)
		clk.add(2 * grace)
		if broke, err := l.guardStale(ws); broke || err != nil {
			t.Fatalf("guardStale of another empty guard = %v, %v; want false (being written)", broke, err)
		}
		mustStand(t, guard)
		clk.add(grace)
		if broke, err := l.guardStale(ws); !broke || err != nil {
			t.Fatalf("guardStale of an empty guard unchanged for the grace period = %v, %v; want true (broken)", broke, err)
		}
	})
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
