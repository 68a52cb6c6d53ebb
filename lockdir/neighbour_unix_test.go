//go:build unix

package lockdir_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/stale"
)

// A neighbour who can write the lock's directory plants a symlink at the
// queue's path, pointing at a directory of the user's (as root: a
// root-only one) holding files named like queue records. dotlock once
// listed it and removed every such file that was not a record. Now the
// queue is never reached through a symlink: the lock says so, and the
// directory is left as it was.
func TestQueueSymlinkNotFollowed(t *testing.T) {
	dir := testdir.New(t)
	victim := filepath.Join(dir, "precious")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"00000000000000000001.w.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f": "data\n",
		"00000000000000000002.r.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e40": "",
		"1.r.notes": "more data\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(victim, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "x.lock")
	if err := os.Symlink(victim, p+".queue"); err != nil {
		t.Fatal(err)
	}
	l, err := lockdir.New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, op := range []struct {
		name string
		do   func() error
		undo func() error
	}{
		{"Lock", func() error { return l.Lock(ctx) }, l.Unlock},
		{"TryLock", l.TryLock, l.Unlock},
		{"RLock", func() error { return l.RLock(ctx) }, l.RUnlock},
	} {
		if err := op.do(); err == nil {
			if err := op.undo(); err != nil {
				t.Errorf("%s's undo: %v", op.name, err)
			}
		} else if !errors.Is(err, dotlock.ErrNotLock) {
			t.Errorf("%s beside a symlinked queue: %v; want success or an error matching ErrNotLock", op.name, err)
		}
	}
	for n, c := range files {
		got, err := os.ReadFile(filepath.Join(victim, n))
		if err != nil || string(got) != c {
			t.Errorf("%s in the symlink's target: %q, %v; want %q untouched", n, got, err, c)
		}
	}
	if st, err := os.Lstat(p + ".queue"); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted symlink: %v, %v; want it left as it was", st, err)
	}
}

// queuedWaiter starts a writer that waits (queued) behind a holder, with
// a quick heartbeat, and returns its queue record's path and the result
// channel of its Lock (ctx bounds it).
func queuedWaiter(t *testing.T, ctx context.Context) (p, record string, done <-chan error) {
	t.Helper()
	return queuedWaiterIn(t, ctx, testdir.New(t), func(string) {})
}

// queuedWaiterIn is queuedWaiter with the lock in dir; held runs once the
// holder holds, before the waiter starts.
func queuedWaiterIn(t *testing.T, ctx context.Context, dir string, held func(p string)) (p, record string, done <-chan error) {
	t.Helper()
	p = filepath.Join(dir, "x.lock")
	holder, err := lockdir.New(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.TryLock(); err != nil {
		t.Fatal(err)
	}
	held(p)
	waiter, err := lockdir.New(p, dotlock.WithHeartbeat(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := waiter.Lock(ctx)
		if err == nil {
			waiter.Unlock()
		}
		ch <- err
	}()
	t.Cleanup(func() {
		holder.Unlock()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("the waiter still runs 10 s after the holder released")
		}
	})
	// The waiter's record appears in the queue once it is in line.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		names, _ := filepath.Glob(filepath.Join(p+".queue", "*.w.*"))
		if len(names) == 1 {
			if b, err := os.ReadFile(names[0]); err == nil {
				if _, err := stale.Parse(b); err == nil {
					return p, names[0], ch
				}
			}
		}
	}
	t.Fatal("the waiter never queued")
	return
}

// beatOf reads the heartbeat counter of the record open at f.
func beatOf(t *testing.T, f *os.File) uint64 {
	t.Helper()
	b := make([]byte, stale.MaxRecordSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && n == 0 {
		t.Fatal(err)
	}
	o, err := stale.Parse(b[:n])
	if err != nil {
		t.Fatalf("the waiter's record: %v", err)
	}
	return o.Beat
}

// A neighbour replaces a queued waiter's record with a hard link to a file
// of the user's: the waiter's heartbeats go on into its own record, never
// into that file (they once reopened the record by name, and wrote 20
// bytes at offset 958 of whatever stood there).
func TestQueuedHeartbeatNotWrittenByName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, record, _ := queuedWaiter(t, ctx)
	own, err := os.Open(record) // the waiter's own inode, kept
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	victim := filepath.Join(filepath.Dir(filepath.Dir(record)), "precious")
	content := bytes.Repeat([]byte("keep me intact\n"), 100)
	if err := os.WriteFile(victim, content, 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := record + ".tmp"
	if err := os.Link(victim, tmp); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	if err := os.Rename(tmp, record); err != nil {
		t.Fatal(err)
	}
	// Wait for two more beats through the waiter's own descriptor.
	start := beatOf(t, own)
	for beatOf(t, own) < start+2 {
		if ctx.Err() != nil {
			t.Fatalf("the waiter's own record stopped beating at %d (after the swap: it beats by name)", start)
		}
		time.Sleep(time.Millisecond)
	}
	if got, _ := os.ReadFile(victim); !bytes.Equal(got, content) {
		t.Errorf("the hard-linked file was written to: %q", got[900:1000])
	}
	cancel()
}

// A neighbour replaces a queued waiter's record with a FIFO: the waiter's
// wait still ends with its context (it once blocked opening the FIFO for
// as long as the holder held).
func TestQueuedWaiterNotBlockedByFIFO(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, record, done := queuedWaiter(t, ctx)
	tmp := record + ".fifo"
	if err := syscall.Mkfifo(tmp, 0o666); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	if err := os.Rename(tmp, record); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Lock with a 2 s context still waiting after 30 s: blocked on the FIFO")
	}
	if st, err := os.Lstat(record); err == nil && !strings.Contains(st.Mode().String(), "p") {
		t.Errorf("the FIFO at %s was replaced: %v", record, st.Mode())
	}
}
