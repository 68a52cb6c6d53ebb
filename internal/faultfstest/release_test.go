//go:build linux

package faultfstest

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
)

// recordName is the base name of the record a lock's release renames.
var recordName = map[string]string{"lockfile": "x.lock", "lockdir": "owner"}

// TestReleaseOutlastsOutage: an SMB client answered EAGAIN to a
// release's rename for as long as smbd took to restart, longer than the
// lease, and Unlock gave up ("rename …/lock …/lock.last: resource
// temporarily unavailable"), leaving a record that names this live
// process, which no one on its host breaks. Unlock now goes on while the
// server cannot be reached (up to the guard's lease), and frees the lock
// once it can.
func TestReleaseOutlastsOutage(t *testing.T) {
	const lease = time.Second
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		t.Run(c.kind, func(t *testing.T) {
			l := c.newIn(t, f, c.kind+"-outage", dotlock.WithStaleAfter(lease), dotlock.WithGrace(lease/4))
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			tok := l.Token()
			f.Set(1, Rule{Op: OpRename, Name: recordName[c.kind], Errno: syscall.EAGAIN})
			defer f.Clear()
			begin := time.Now()
			got := make(chan error, 1)
			go func() { got <- l.Unlock() }()
			// The outage lasts three leases (or until Unlock gives up,
			// which the check below reports).
			for time.Since(begin) < 3*lease && len(got) == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			tries := len(f.Faults())
			f.Clear()
			if err := <-got; err != nil {
				t.Fatalf("Unlock through %d EAGAINs from the rename over %v: %v", tries, time.Since(begin).Round(time.Millisecond), err)
			}
			if tries < 2 {
				t.Fatalf("%d faults fired: the test did not test", tries)
			}
			next := takeAfter(t, c, f, c.kind+"-outage", "the release")
			if next.Token() != tok+1 {
				t.Errorf("token after the release: %d; want %d", next.Token(), tok+1)
			}
			if err := next.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReleaseReplyLost: a release's rename that happened, though the
// client reported an error (its reply lost, or EAGAIN while reconnecting),
// is a release done: the retry finds the path free and our record in the
// last-record slot. It used to report that error, and the next holder's
// token goes on from ours.
func TestReleaseReplyLost(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		t.Run(c.kind, func(t *testing.T) {
			l := c.newIn(t, f, c.kind+"-lost", dotlock.WithGrace(200*time.Millisecond))
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			tok := l.Token()
			f.Set(1, Rule{Op: OpRename, Name: recordName[c.kind], Action: LostReply, Errno: syscall.EAGAIN, Times: 1})
			defer f.Clear()
			if err := l.Unlock(); err != nil {
				t.Fatalf("Unlock whose rename happened, its reply lost: %v (faults: %v)", err, f.Faults())
			}
			if len(f.Faults()) != 1 {
				t.Fatalf("faults: %v; want one: the test did not test", f.Faults())
			}
			// A lock directory is left empty, freed after the grace period.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := l.Lock(ctx); err != nil {
				t.Fatalf("Lock after the release: %v", err)
			}
			if l.Token() != tok+1 {
				t.Errorf("token after the release: %d; want %d", l.Token(), tok+1)
			}
			if err := l.Unlock(); err != nil && !errors.Is(err, dotlock.ErrNotHeld) {
				t.Fatal(err)
			}
		})
	}
}

// TestRUnlockFinishesGroupChange: measured while smbd restarted, RUnlock
// failed with "readdir …/lock: resource temporarily unavailable" after its
// record had left: its retry checked the record again, found it gone, and
// gave up, leaving the group's anchor with no reader in it. The retry now
// does only what was left: dissolving the group.
func TestRUnlockFinishesGroupChange(t *testing.T) {
	f := MountT(t, Options{})
	l := lockKinds[1].newIn(t, f, "shared-left")
	rw := l.(*dotlock.RWMutex)
	if err := rw.TryRLock(); err != nil {
		t.Fatal(err)
	}
	// P's one listing comes after the record left: the group's change
	// (S5) looks for anything foreign in P before it retires the anchor.
	f.Set(1, Rule{Op: OpReaddir, Name: "x.lock", Errno: syscall.EAGAIN, Times: 1})
	defer f.Clear()
	if err := rw.RUnlock(); err != nil {
		t.Fatalf("RUnlock with EAGAIN from listing the group: %v (faults: %v)", err, f.Faults())
	}
	if len(f.Faults()) != 1 {
		t.Fatalf("faults: %v; want one: the test did not test", f.Faults())
	}
	w := takeAfter(t, lockKinds[1], f, "shared-left", "the last reader left")
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestReplacedAtReleaseNotLost: R1 reads the record back; an SMB client's
// EINVAL there says only that it holds an older file once at this name
// (as at A6 and B1), not that ours is gone. The release looks again — it
// used to report ErrLost and walk away from a record naming this live
// process, which then blocked every try on this host.
func TestReplacedAtReleaseNotLost(t *testing.T) {
	f := MountT(t, Options{})
	for _, c := range lockKinds {
		t.Run(c.kind, func(t *testing.T) {
			l := c.newIn(t, f, c.kind+"-r1")
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			f.Set(1, Rule{Op: OpOpen, Name: recordName[c.kind], Errno: syscall.EINVAL, Times: 2})
			defer f.Clear()
			if err := l.Unlock(); err != nil {
				t.Fatalf("Unlock with EINVAL from R1's read: %v (faults: %v)", err, f.Faults())
			}
			if len(f.Faults()) == 0 {
				t.Fatalf("no fault fired: the test did not test")
			}
			next := takeAfter(t, c, f, c.kind+"-r1", "the release")
			if err := next.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// takeAfter opens a new handle on the lock in dir of f and takes it with
// TryLock: the lock must be free after what happened (when). It returns
// the handle, holding.
func takeAfter(t *testing.T, k lockKind, f *FS, dir, when string) dotlock.Locker {
	t.Helper()
	l, err := k.open(filepath.Join(f.Mount, dir, "x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TryLock(); err != nil {
		t.Fatalf("TryLock after %s: %v", when, err)
	}
	return l
}
