package lockcore

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// wakePointCount is the number of paths in the process-wide wake table.
func wakePointCount() int {
	wakePoints.Lock()
	defer wakePoints.Unlock()
	return len(wakePoints.m)
}

// lineCount is the number of local lines (line.go) in the process.
func lineCount() int {
	lines.Lock()
	defer lines.Unlock()
	return len(lines.m)
}

// A process that locks many distinct paths, one handle each, dropped once
// released (a job runner locking a path per job), keeps per-path state only
// for the handles it still has: the process-wide wake points used to keep
// one entry per path ever used, and grew for ever.
func TestPerPathStateBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 locks")
	}
	n := 100_000
	if runtime.GOOS == "windows" {
		n = 2_000 // under Wine, 100,000 would take a quarter of an hour; the bound is the same
	}
	dir := testdir.New(t)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	start := time.Now()
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("job%06d.lock", i))
		newLock := newFileLock
		if i%2 == 1 {
			newLock = newDirLock
		}
		l := newLock(t, path)
		if err := l.TryLock(); err != nil {
			t.Fatalf("TryLock %s: %v", path, err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatalf("Unlock %s: %v", path, err)
		}
	}
	t.Logf("%d locks in %v", n, time.Since(start).Round(time.Millisecond))
	// Dropped handles' entries go once the collector finds them
	// unreachable, and their cleanups have run: polled with a deadline.
	// The last few releases are kept for the handoff window (recentReleases).
	bound := len(recentReleases.ring)
	deadline := time.Now().Add(30 * time.Second)
	for wakePointCount() > bound && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := wakePointCount(); got > bound {
		t.Errorf("after %d paths locked and released, their handles dropped: %d wake points, want at most %d", n, got, bound)
	}
	if got := lineCount(); got != 0 {
		t.Errorf("%d local lines with no waiters, want 0", got)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grew := int64(ms.HeapInuse) - int64(before)
	t.Logf("heap in use: %d KiB before, %d KiB after (%+d KiB)", before>>10, ms.HeapInuse>>10, grew>>10)
	// Generous: the wake table alone used to grow by ~20 MiB here.
	if grew > 8<<20 {
		t.Errorf("heap in use grew by %d KiB over %d distinct paths, want at most 8 MiB", grew>>10, n)
	}
}

// Handles on one path share one wake point while any of them is reachable,
// so that a release through one wakes waiters through another; a handle
// made again after all were dropped gets the release just before it
// (recentReleases: a loop that makes a handle per hold still yields, W4).
func TestWakePointShared(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	a, b := newFileLock(t, path), newFileLock(t, path)
	if a.wake != b.wake {
		t.Fatalf("two handles on one path have different wake points")
	}
	if err := a.TryLock(); err != nil {
		t.Fatal(err)
	}
	tok := a.Token()
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	a, b = nil, nil
	runtime.GC()
	runtime.GC()
	c := newFileLock(t, path)
	if got, ok := c.wake.releasedWithin(time.Hour, time.Now()); !ok || got != tok {
		t.Errorf("a new handle after the last was dropped: released %d, %v; want the release of token %d remembered", got, ok, tok)
	}
}

// A handle keeps observations only of the waiters queued at its last look
// at the queue, not of every remote waiter it ever saw (queueObs).
func TestQueueObservationsBounded(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newDirLock(t, path)
	queue := path + ".queue"
	if err := os.Mkdir(queue, 0o755); err != nil {
		t.Fatal(err)
	}
	plant := func(seq uint64) string {
		o, err := stale.Self(0, stale.ModeExclusive, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		o.Host = "elsewhere" // judged by its heartbeat, observed over time
		name := queueName(seq, true, o.UUID)
		if err := os.WriteFile(filepath.Join(queue, name), o.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	count := func() int {
		l.rw.mu.Lock()
		defer l.rw.mu.Unlock()
		return len(l.rw.queueObs)
	}
	const waiters = 10
	var seq uint64
	for round := range 5 {
		var names []string
		for range waiters {
			seq++
			names = append(names, plant(seq))
		}
		l.rw.observeQueue()
		if got := count(); got != waiters {
			t.Errorf("round %d: %d waiters queued, %d observed", round, waiters, got)
		}
		for _, n := range names { // they were served, or gave up
			if err := os.Remove(filepath.Join(queue, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := l.rw.in(nil).waiters(); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 0 {
		t.Errorf("an empty queue: %d observations kept, want 0", got)
	}
}
