package lockcore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
	"golang.org/x/sys/unix"
)

// A queued reader that joins the group holding P (no writer queues any
// more) must first look whether it was handed the lock: a hand-over (S4)
// writes the reader's record in P before it removes its queue record, and
// that removal can fail (EIO) or the hand-over stop between the two. The
// reader joined beside its handed record, and left it, naming this live
// process, when it released: the lock stayed shared for good and writers
// waited for ever (TestFaultsRW, about one schedule in 2000: a lost fsync
// reply of the handed record, a failing unlink of the queue record).
//
// The test holds the guard while the reader waits for it in its join,
// makes the half-done hand-over, and lets the guard go.
func TestJoinFromQueueAdoptsHandedRecord(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	group, reader := newDirLock(t, path), newDirLock(t, path)
	if err := group.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	// A writer queues (a live one: this process), so the reader queues
	// behind it rather than join.
	queue := path + ".queue"
	if err := os.Mkdir(queue, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writerRec := filepath.Join(queue, queueName(1, true, w.UUID))
	if err := os.WriteFile(writerRec, w.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	guard := path + guardSuffix
	var rlockErr error
	done := make(chan struct{}) // closed when RLock has returned rlockErr
	go func() { rlockErr = reader.RLock(ctx); close(done) }()
	t.Cleanup(func() {
		// On a failure: the reader's wait ends before the directory goes.
		os.Remove(guard)
		cancel()
		<-done
		if rlockErr == nil {
			reader.RUnlock() // ErrNotHeld if the test released it
		}
	})
	readerRec := waitForFile(t, queue, ".r.", done)

	// Take the guard, and let the writer go (as one that gave up).
	g, err := stale.Self(0, stale.ModeBreaker, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for {
		err := os.WriteFile(guard+".new", g.Marshal(), 0o644)
		if err == nil {
			err = os.Link(guard+".new", guard) // fails while the reader holds it
			os.Remove(guard + ".new")
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("could not take the guard")
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(writerRec); err != nil {
		t.Fatal(err)
	}
	// The reader's turn now joins, under the guard: it reads the guard's
	// record each time it finds it held. A few reads, and it waits there.
	seeOpens(t, guard, 3, done)

	// The half-done hand-over: the reader's record in P, its queue record
	// left.
	q, err := os.ReadFile(filepath.Join(queue, readerRec))
	if err != nil {
		t.Fatal(err)
	}
	o, err := stale.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	anchor, err := os.ReadFile(filepath.Join(path, OwnerFile))
	if err != nil {
		t.Fatal(err)
	}
	a, err := stale.Parse(anchor)
	if err != nil {
		t.Fatal(err)
	}
	o.Mode, o.Token, o.Acquired = stale.ModeShared, a.Token, time.Now()
	if err := os.WriteFile(filepath.Join(path, readerPrefix+o.UUID), o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(guard); err != nil {
		t.Fatal(err)
	}
	<-done
	if rlockErr != nil {
		t.Fatalf("RLock: %v", rlockErr)
	}
	if err := reader.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if err := group.RUnlock(); err != nil {
		t.Fatal(err)
	}
	after := newDirLock(t, path)
	if err := after.TryLock(); err != nil {
		names, _ := filepath.Glob(filepath.Join(path, "*"))
		t.Fatalf("after both readers left, TryLock: %v; left in P: %v", err, names)
	}
	if err := after.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(queue, readerRec)); !os.IsNotExist(err) {
		t.Errorf("the reader's queue record after it adopted its hand-over: %v; want it gone", err)
	}
}

// waitForFile waits for a name containing part in dir, and returns it;
// done is closed if the wait ended first.
func waitForFile(t *testing.T, dir, part string, done <-chan struct{}) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		names, _ := os.ReadDir(dir)
		for _, n := range names {
			if strings.Contains(n.Name(), part) {
				return n.Name()
			}
		}
		select {
		case <-done:
			t.Fatalf("the wait ended before %q appeared in %s", part, dir)
		default:
		}
		time.Sleep(time.Millisecond) // polling the directory, with a deadline
	}
	t.Fatalf("no %q in %s within 20s", part, dir)
	return ""
}

// seeOpens waits until name has been opened n times (inotify).
func seeOpens(t *testing.T, name string, n int, done <-chan struct{}) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, name, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for seen := 0; seen < n; {
		select {
		case <-done:
			t.Fatalf("the wait ended before it looked at %s", name)
		default:
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, _ := unix.Poll(fds, 20000); k == 0 {
			t.Fatalf("%s not opened %d times within 20s (%d)", name, n, seen)
		}
		m, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		seen += m / unix.SizeofInotifyEvent // no names: a watch on the file itself
	}
}
