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
