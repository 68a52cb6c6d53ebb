//go:build linux

package faultfstest

import (
	"bytes"
	"context"
	"errors"
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
		// The record, opened while another host replaces it: SMB
		// answered EINVAL, with and without O_DIRECT (on a network
		// filesystem only: on a local one EINVAL is an error to report).
		faults := []fault{{OpOpen, c.record, syscall.ESTALE}, {OpRead, c.record, syscall.ESTALE}, {OpGetattr, c.record, syscall.ESTALE}, {OpOpen, c.record, syscall.EINVAL}}
		if c.kind == "lockdir" {
			// The waiters' queue, listed while it is being removed: SMB
			// answered ENOENT (and the waiter exited 66, "lock's
			// directory does not exist"), NFS may answer ESTALE.
			faults = append(faults, fault{OpReaddir, "x.lock.queue", syscall.ENOENT}, fault{OpReaddir, "x.lock.queue", syscall.ESTALE})
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

// lockKind is one of the two lock packages, for the tests below.
type lockKind struct {
	kind string
	open func(path string, opts ...dotlock.Option) (dotlock.Locker, error)
}

var lockKinds = []lockKind{
	{"lockfile", func(p string, opts ...dotlock.Option) (dotlock.Locker, error) { return lockfile.New(p, opts...) }},
	{"lockdir", func(p string, opts ...dotlock.Option) (dotlock.Locker, error) { return lockdir.New(p, opts...) }},
}

// newIn makes directory dir in f and returns a lock of kind k in it.
func (k lockKind) newIn(t *testing.T, f *FS, dir string, opts ...dotlock.Option) dotlock.Locker {
	t.Helper()
	if err := os.Mkdir(filepath.Join(f.Backing, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := k.open(filepath.Join(f.Mount, dir, "x.lock"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReplacedSlotKeepsTokens: an SMB client answers EINVAL for a
// last-record slot that another host replaced while this client keeps a
// lease on the old file. That slot is not missing: taking it so would
// start tokens again at 1. The acquirer reads it again (or comes back
// later), and the token goes on.
func TestReplacedSlotKeepsTokens(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		t.Run(c.kind, func(t *testing.T) {
			l := c.newIn(t, f, c.kind)
			for range 3 {
				if err := l.TryLock(); err != nil {
					t.Fatal(err)
				}
				if err := l.Unlock(); err != nil {
					t.Fatal(err)
				}
			}
			f.Set(1, Rule{Op: OpOpen, Name: "x.lock.last", Errno: syscall.EINVAL, Times: 2})
			defer f.Clear()
			if got := lockUnderFaults(t, f, l); got != 4 {
				t.Errorf("token %d after three holds and EINVAL from P.last; want 4 (faults: %v)", got, f.Faults())
			}
		})
	}
}

// TestReplacedRecordIsLost: an SMB client answers EINVAL, with and without
// O_DIRECT, for a holder's own record that another host replaced (took
// over) while this client still holds a lease on it. Measured between two
// VMs: a holder resumed after SIGSTOP got it at every heartbeat and never
// learnt of its loss. It is the record gone: Lost fires.
func TestReplacedRecordIsLost(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		record := map[string]string{"lockfile": "x.lock", "lockdir": "owner"}[c.kind]
		t.Run(c.kind, func(t *testing.T) {
			l := c.newIn(t, f, c.kind, dotlock.WithHeartbeat(20*time.Millisecond))
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			type loser interface{ Lost() <-chan struct{} }
			// At every open, as the client did: the loss is decided under
			// the guard (H1g), with a second read.
			f.Set(1, Rule{Op: OpOpen, Name: record, Errno: syscall.EINVAL})
			defer f.Clear()
			select {
			case <-l.(loser).Lost():
			case <-time.After(10 * time.Second):
				// Not Fatal: Unlock stops the heartbeat first, which must
				// not be inside the filesystem when it is unmounted.
				t.Errorf("Lost never fired after EINVAL from the record at every open (faults: %v)", f.Faults())
			}
			if err := l.Unlock(); !errors.Is(err, dotlock.ErrLost) {
				t.Errorf("Unlock after the loss: %v; want ErrLost", err)
			}
		})
	}
}

// TestUnreachableIsRetried: an SMB client (soft, its default) answered
// EAGAIN for opens under way while smbd restarted, and Lock failed with
// it. Such errors say nothing about the lock: Lock tries again (its
// context rules), and TryLock reports the lock as not to be had, with the
// cause Unreachable.
func TestUnreachableIsRetried(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		op := map[string]Op{"lockfile": OpCreate, "lockdir": OpMkdir}[c.kind]
		for _, errno := range []syscall.Errno{syscall.EAGAIN, syscall.ETIMEDOUT, syscall.ECONNRESET} {
			t.Run(c.kind+"/"+errno.Error(), func(t *testing.T) {
				l := c.newIn(t, f, c.kind+strconv.Itoa(int(errno)))
				f.Set(1, Rule{Op: op, Name: "x.lock", Errno: errno, Times: 1})
				var le *dotlock.LockedError
				if err := l.TryLock(); !errors.As(err, &le) || le.Cause != dotlock.Unreachable {
					t.Fatalf("TryLock with %v from the create: %v; want a LockedError, cause Unreachable", errno, err)
				}
				f.Set(1, Rule{Op: op, Name: "x.lock", Errno: errno, Times: 2})
				defer f.Clear()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := l.Lock(ctx); err != nil {
					t.Fatalf("Lock with %v twice from the create: %v (faults: %v)", errno, err, f.Faults())
				}
				if err := l.Unlock(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestReplacedAtCheckNotLeftBehind: A6 reads back the record just written;
// an SMB client's EINVAL there says only that it holds an older file once
// at this name, not that ours is gone. The attempt gives its entry up
// (removing its own record) and tries again — it used to walk away from
// it, leaving a record naming this live process, which then blocked every
// try on this host.
func TestReplacedAtCheckNotLeftBehind(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		record := map[string]string{"lockfile": "x.lock", "lockdir": "owner"}[c.kind]
		t.Run(c.kind, func(t *testing.T) {
			l := c.newIn(t, f, c.kind+"-a6")
			f.Set(1, Rule{Op: OpOpen, Name: record, Errno: syscall.EINVAL, Times: 2})
			defer f.Clear()
			if err := l.TryLock(); err != nil {
				t.Fatalf("TryLock with EINVAL from the check's read: %v (faults: %v)", err, f.Faults())
			}
			if len(f.Faults()) == 0 {
				t.Errorf("no fault fired: the test did not test")
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUnreachableIsRetriedShared: the same for shared holds, whose first
// step is the breaker guard (measured: RLock failed with "open
// P.break: resource temporarily unavailable" while smbd restarted).
func TestUnreachableIsRetriedShared(t *testing.T) {
	f := MountT(t, Options{})
	l := lockKinds[1].newIn(t, f, "shared")
	rw := l.(*dotlock.RWMutex)
	f.Set(1, Rule{Op: OpCreate, Name: "x.lock.break", Errno: syscall.EAGAIN, Times: 1})
	var le *dotlock.LockedError
	if err := rw.TryRLock(); !errors.As(err, &le) || le.Cause != dotlock.Unreachable {
		t.Fatalf("TryRLock with EAGAIN from the guard's create: %v; want a LockedError, cause Unreachable (faults: %v)", err, f.Faults())
	}
	f.Set(1, Rule{Op: OpCreate, Name: "x.lock.break", Errno: syscall.EAGAIN, Times: 2})
	defer f.Clear()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rw.RLock(ctx); err != nil {
		t.Fatalf("RLock with EAGAIN twice from the guard's create: %v (faults: %v)", err, f.Faults())
	}
	if err := rw.RUnlock(); err != nil {
		t.Fatal(err)
	}
}

// TestUnreachableWhileInLine: a lock directory's waiter that meets such an
// error while it waits in line (its queue and handoff go through the
// breaker guard) keeps waiting, and gets the lock once it is free.
func TestUnreachableWhileInLine(t *testing.T) {
	f := MountT(t, Options{})
	holder := lockKinds[1].newIn(t, f, "inline")
	if err := holder.TryLock(); err != nil {
		t.Fatal(err)
	}
	waiter, err := lockKinds[1].open(filepath.Join(f.Mount, "inline", "x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	f.Set(1, Rule{Op: OpCreate, Name: "x.lock.break", Errno: syscall.EAGAIN, Times: 2})
	defer f.Clear()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(ctx) }()
	for len(f.Faults()) < 2 && ctx.Err() == nil && len(got) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Lock, waiting in line through EAGAIN from the guard's create: %v (faults: %v)", err, f.Faults())
	}
	if err := waiter.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestChainSlotErrorsKeepTokens: a last-record slot after the first
// (P.last.1, where a sticky directory made another user's release move on)
// that cannot be read for a moment — ESTALE, replaced on the server while
// opened; EINVAL from an SMB client holding the old file — is not the end
// of the chain: taking it so would issue a token below the one it holds.
func TestChainSlotErrorsKeepTokens(t *testing.T) {
	f := MountT(t, Options{})
	for _, errno := range []syscall.Errno{syscall.ESTALE, syscall.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := "chain-" + strconv.Itoa(int(errno))
			l := lockKinds[0].newIn(t, f, dir)
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			// Slot 1 holds token 9, as another user's release would have
			// left it.
			last := filepath.Join(f.Backing, dir, "x.lock.last")
			data, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			slot1 := bytes.Replace(data, []byte("\ntoken: 00000000000000000001\n"), []byte("\ntoken: 00000000000000000009\n"), 1)
			if bytes.Equal(slot1, data) {
				t.Fatalf("no token line in %q", data)
			}
			if err := os.WriteFile(last+".1", slot1, 0o644); err != nil {
				t.Fatal(err)
			}
			f.Set(1, Rule{Op: OpOpen, Name: "x.lock.last.1", Errno: errno, Times: 2})
			defer f.Clear()
			if got := lockUnderFaults(t, f, l); got != 10 {
				t.Errorf("token %d with P.last.1 at 9 and %v from it; want 10 (faults: %v)", got, errno, f.Faults())
			}
		})
	}
}

// lockUnderFaults takes l with f's rules set, failing t if it cannot or if
// no rule fired (the test would not test), and returns the hold's token;
// the hold is released when t ends.
func lockUnderFaults(t *testing.T, f *FS, l dotlock.Locker) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Lock(ctx); err != nil {
		t.Fatalf("Lock: %v (faults: %v)", err, f.Faults())
	}
	t.Cleanup(func() { l.Unlock() })
	if len(f.Faults()) == 0 {
		t.Fatal("no fault fired: the test did not test")
	}
	return l.(interface{ Token() uint64 }).Token()
}
