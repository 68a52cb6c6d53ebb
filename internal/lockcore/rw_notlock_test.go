//go:build unix

package lockcore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// A symlink a neighbour put at P.last is no last record: TryRLock and
// RLock refuse with ErrNotLock, as TryLock and Lock do (A3), and leave it.
// (A shared join took it for a record unreadable for now, ErrLocked, and
// RLock waited for its context.)
func TestSharedSymlinkAtLastNotALock(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path+".last"); err != nil {
		t.Fatal(err)
	}
	l := newDirLock(t, path, WithGrace(50*time.Millisecond))
	if err := l.TryRLock(); !errors.Is(err, ErrNotLock) {
		t.Errorf("TryRLock with a symlink at P.last: %v, want ErrNotLock", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.RLock(ctx); !errors.Is(err, ErrNotLock) {
		t.Errorf("RLock with a symlink at P.last: %v, want ErrNotLock", err)
	}
	if got, err := os.Readlink(path + ".last"); err != nil || got != target {
		t.Errorf("the symlink at P.last: %q, %v; want it left", got, err)
	}
}

// Readers queued before a free P whose P.last is not a record: the
// hand-on cannot let them in (no token), and a reader trying to join must
// not join again and again under the guard (it recursed, until the stack
// overflowed or P.last became readable). A neighbour's file there is
// ErrNotLock; an empty one (a record being written, for all it knows) is
// ErrLocked, at once: its grace period here is an hour.
func TestSharedJoinQueuedLastUnreadable(t *testing.T) {
	for _, c := range []struct {
		last string
		want error
	}{{"symlink", ErrNotLock}, {"empty", ErrLocked}} {
		t.Run(c.last, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			l := newDirLock(t, path, WithGrace(time.Hour))
			plantWaiter(t, path+".queue", 1, false, false) // a live reader (this process)
			if c.last == "symlink" {
				if err := os.Symlink("elsewhere", path+".last"); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path+".last", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- l.TryRLock() }()
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Errorf("TryRLock: %v, want %v", err, c.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("TryRLock still running after 20 s")
			}
		})
	}
}
