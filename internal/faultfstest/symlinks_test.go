//go:build linux

package faultfstest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// TestNamesBesideLockNotFollowed: on FUSE an attempt reaches the names
// beside the lock through a descriptor of the lock's directory (opDir),
// and so do a shared hold's changes of the holder set, in their guard
// section; a symlink planted at any of those names is never followed
// through it, nor removed. Behind each symlink is a dead holder's record,
// which a lock that followed the link would judge and break, or read a
// token from. (One at P.queue is no queue: a free lock is taken, shared or
// not, and the link left.)
func TestNamesBesideLockNotFollowed(t *testing.T) {
	f := MountT(t, Options{})
	o, err := stale.Self(7, stale.ModeExclusive, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	o.PID = 1 << 30 // no such process: dead
	dead := o.Marshal()
	type lockFuncs struct {
		try    func() error
		lock   func(context.Context) error
		unlock func() error
	}
	for _, c := range lockKinds {
		for _, shared := range []bool{false, true} {
			names := []string{"x.lock", "x.lock.last", "x.lock.break"}
			if c.kind == "lockdir" {
				names = append(names, "x.lock/owner")
			}
			mode := c.kind
			if shared {
				if c.kind != "lockdir" {
					continue
				}
				// S1 looks for queued writers. What is not a directory
				// there is no queue: it stops no one taking a free lock
				// (only a waiter, which cannot queue there).
				names = append(names, "x.lock.queue")
				mode += "-shared"
			}
			for i, name := range names {
				t.Run(mode+"/"+name, func(t *testing.T) {
					t.Parallel() // each waits notLockSettle (2 s) in Lock
					dir := filepath.Join(f.Mount, "links-"+mode+"-"+string(rune('a'+i)))
					l := c.newIn(t, f, filepath.Base(dir))
					fns := lockFuncs{l.TryLock, l.Lock, l.Unlock}
					if shared {
						rw := l.(*dotlock.RWMutex)
						fns = lockFuncs{rw.TryRLock, rw.RLock, rw.RUnlock}
					}
					target := filepath.Join(f.Mount, "target-"+mode+"-"+string(rune('a'+i)))
					if err := os.WriteFile(target, dead, 0o644); err != nil {
						t.Fatal(err)
					}
					link := filepath.Join(dir, name)
					if filepath.Dir(link) != dir {
						if err := os.Mkdir(filepath.Dir(link), 0o755); err != nil {
							t.Fatal(err)
						}
					}
					if err := os.Symlink(target, link); err != nil {
						t.Fatal(err)
					}
					// Lock refuses once the symlink has stood for notLockSettle (2 s).
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					if name == "x.lock.queue" {
						if err := fns.try(); err != nil {
							t.Errorf("TryLock of a free lock with a symlink at %s: %v", name, err)
						} else if err := fns.unlock(); err != nil {
							t.Errorf("its release: %v", err)
						}
					} else {
						if err := fns.try(); !errors.Is(err, dotlock.ErrNotLock) {
							if err == nil {
								fns.unlock()
							}
							t.Errorf("TryLock with a symlink at %s: %v; want ErrNotLock", name, err)
						}
						if err := fns.lock(ctx); !errors.Is(err, dotlock.ErrNotLock) {
							if err == nil {
								fns.unlock()
							}
							t.Errorf("Lock with a symlink at %s: %v; want ErrNotLock", name, err)
						}
					}
					if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
						t.Errorf("the symlink at %s: %v, %v; want it left as it was", name, st, err)
					}
					if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, dead) {
						t.Errorf("behind the symlink at %s: %v; want the record left as it was", name, err)
					}
				})
			}
		}
	}
}
