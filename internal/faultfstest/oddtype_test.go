//go:build linux

package faultfstest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
)

// plantStranger puts at path what the other lock kind would be: a
// regular file at a lock directory's path, a directory at a lock file's.
func plantStranger(t *testing.T, kind, path string) {
	t.Helper()
	var err error
	if kind == "lockdir" {
		err = os.WriteFile(path, []byte("not a lock\n"), 0o644)
	} else {
		err = os.Mkdir(path, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestNotLockLooksAgain: while smbd restarted, the Linux client showed a
// healthy lock directory as a regular file (built from a reply without
// attributes: "bogus file nlink value 0" in its log) for its attribute
// cache's time, and a waiter failed with "is a regular file, not a lock
// directory". On a network filesystem a waiter looks again for a while
// before it says so; a stranger that stays is still reported.
func TestNotLockLooksAgain(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		t.Run(c.kind+"/passing", func(t *testing.T) {
			l := c.newIn(t, f, c.kind+"-passing")
			backing := filepath.Join(f.Backing, c.kind+"-passing", "x.lock")
			plantStranger(t, c.kind, backing)
			f.Set(1, Rule{Op: OpLookup, Name: "x.lock", Action: Delay}) // counts the looks
			defer f.Clear()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got := make(chan error, 1)
			go func() { got <- l.Lock(ctx) }()
			// The stranger goes once the waiter has looked at it a few
			// times (or has given up, which the check below reports).
			for len(f.Faults()) < 3 && len(got) == 0 {
				time.Sleep(time.Millisecond)
			}
			if err := os.Remove(backing); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatalf("Lock, with a stranger at the path for a moment: %v", err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(c.kind+"/staying", func(t *testing.T) {
			l := c.newIn(t, f, c.kind+"-staying")
			plantStranger(t, c.kind, filepath.Join(f.Backing, c.kind+"-staying", "x.lock"))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := l.Lock(ctx)
			var pe *os.PathError
			if !errors.Is(err, dotlock.ErrNotLock) || !errors.As(err, &pe) {
				t.Fatalf("Lock with a stranger staying at the path: %v; want ErrNotLock in a *fs.PathError", err)
			}
		})
	}
}
