//go:build unix

package lockdir_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/testdir"
)

// A neighbour plants a FIFO at the queue's path. Status (dotlock status,
// unlock, break, and the keeper of `dotlock lock --pid`, which polls it)
// once listed the queue with os.Open, which blocks on a FIFO until someone
// opens it for writing: for ever.
func TestReviewStatusQueueFIFO(t *testing.T) {
	dir := testdir.New(t)
	p := filepath.Join(dir, "x.lock")
	if err := syscall.Mkfifo(p+".queue", 0o666); err != nil {
		t.Fatal(err)
	}
	l, err := coreDir(p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := l.Status(); done <- err }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// Unblock the open, so the test binary ends.
		if f, err := os.OpenFile(p+".queue", os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		t.Fatal("Status beside a FIFO at the queue path still blocked after 5 s")
	}
}

// A neighbour plants a symlink at the queue's path, pointing at a
// directory of the user's: Status lists it through the link and counts
// its files named like queue records as waiters.
func TestReviewStatusQueueSymlink(t *testing.T) {
	dir := testdir.New(t)
	victim := filepath.Join(dir, "precious")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "1.r.notes"), []byte("data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "x.lock")
	if err := os.Symlink(victim, p+".queue"); err != nil {
		t.Fatal(err)
	}
	l, err := coreDir(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting != 0 {
		t.Errorf("Status beside a symlinked queue: Waiting = %d; want 0 (a symlink is never the queue, nor followed)", st.Waiting)
	}
}

// HandOver of a shared hold renames the new record into P (through a
// descriptor of P since the review): the record still lands there.
func TestReviewHandOverSharedStillWorks(t *testing.T) {
	dir := testdir.New(t)
	p := filepath.Join(dir, "x.lock")
	rw, err := coreDir(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.RLock(t.Context()); err != nil {
		t.Fatal(err)
	}
	o, err := rw.HandOver(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "r."+o.UUID)); err != nil {
		t.Fatalf("the handed-over reader's record: %v", err)
	}
	if err := rw.ReleaseFor(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("after ReleaseFor: %v; want the lock gone", err)
	}
}

// coreDir is the engine's handle on the lock directory p: what the dotlock
// command uses for status, break and hand-over (not lockdir's API).
func coreDir(p string, opts ...lockcore.Option) (*lockcore.Lock, error) {
	return lockcore.New(p, func(abs string) lockcore.Store { return lockcore.NewDirStore(abs) }, opts...)
}
