//go:build linux

package faultfstest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// ESTALE is NFS's answer for a file that another client removed while
// this one had it open or cached (measured on NFS v3: a record read while
// its holder released it). For whoever looks at the lock path, the record
// is gone: a waiter that meets it looks again, and gets the lock once it is
// free, rather than failing (it exited 71, "stale file handle"). So are
// SMB's ENOENT from listing a directory being removed, and its EINVAL from
// opening a record in one.
func TestStaleHandleIsGone(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range []struct {
		kind   string
		record string // the record's base name, where ESTALE is injected
		open   func(path string) (dotlock.Locker, error)
	}{
		{"lockfile", "x.lock", func(p string) (dotlock.Locker, error) { return lockfile.New(p) }},
		{"lockdir", "owner", func(p string) (dotlock.Locker, error) { return lockdir.New(p) }},
	} {
		type fault struct {
			op    Op
			name  string
			errno syscall.Errno
		}
		faults := []fault{{OpOpen, c.record, syscall.ESTALE}, {OpRead, c.record, syscall.ESTALE}, {OpGetattr, c.record, syscall.ESTALE}}
		if c.kind == "lockdir" {
			// The waiters' queue, listed while it is being removed: SMB
			// answered ENOENT (and the waiter exited 66, "lock's
			// directory does not exist"), NFS may answer ESTALE.
			faults = append(faults, fault{OpReaddir, "x.lock.queue", syscall.ENOENT}, fault{OpReaddir, "x.lock.queue", syscall.ESTALE})
			// The record, opened while another host removes the lock
			// directory: SMB answered EINVAL (a network filesystem only:
			// on a local one EINVAL is an error to report).
			faults = append(faults, fault{OpOpen, "owner", syscall.EINVAL})
		}
		for i, fl := range faults {
			op := fl.op
			t.Run(c.kind+"/"+string(op)+"/"+fl.errno.Error(), func(t *testing.T) {
				dir := c.kind + strconv.Itoa(i)
				if err := os.Mkdir(filepath.Join(f.Backing, dir), 0o755); err != nil {
					t.Fatal(err)
				}
				holder, err := c.open(filepath.Join(f.Backing, dir, "x.lock"))
				if err != nil {
					t.Fatal(err)
				}
				if err := holder.TryLock(); err != nil {
					t.Fatal(err)
				}
				f.Set(1, Rule{Op: op, Name: fl.name, Errno: fl.errno, Times: 3})
				defer f.Clear()
				waiter, err := c.open(filepath.Join(f.Mount, dir, "x.lock"))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				got := make(chan error, 1)
				go func() { got <- waiter.Lock(ctx) }()
				// Release once the faults have fired (or the waiter has
				// given up, which the check below reports).
				for len(f.Faults()) < 3 && ctx.Err() == nil && len(got) == 0 {
					time.Sleep(time.Millisecond)
				}
				if err := holder.Unlock(); err != nil {
					t.Fatal(err)
				}
				if err := <-got; err != nil {
					t.Fatalf("Lock after %v on %s of %s: %v (faults: %v)", fl.errno, op, fl.name, err, f.Faults())
				}
				if err := waiter.Unlock(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
