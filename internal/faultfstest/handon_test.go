//go:build linux

package faultfstest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/stale"
)

// TestHandOnNeedsFreeLock: a waiter joining the queue of a lock directory
// hands the lock on at once if it is free (S2, S4), judged by a stat of P.
// A stat that failed (EIO) was taken for "free": the hand-over read the last
// token, and the holder's release — which needs no guard — published a
// greater one before the hand-over made P, so the waiter held the token
// its predecessor had held (TestFaultsLockdir seeds 30178 and 30278, one
// schedule in 700). Here the holder releases between the hand-over's read
// of the last token and its mkdir; a hand-over that went ahead shows as a
// repeated token.
func TestHandOnNeedsFreeLock(t *testing.T) {
	f := MountT(t, Options{})
	dir := "handon"
	lk := lockKinds[1]
	waiter := lk.newIn(t, f, dir, opts()...)
	holder, err := lockdir.New(filepath.Join(f.Backing, dir, "x.lock"), opts()...) // beside the faults
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 2 { // a last record to read: tokens 1 and 2
		if err := holder.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := holder.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	held := holder.Token()
	// The waiter's stat of P fails once. A hand-over that goes ahead reads
	// the last token, then looks for the end of the slot chain: that look
	// waits, and the holder releases meanwhile. (The mkdir itself cannot
	// be made to wait while P stands: it never reaches the filesystem.)
	f.Set(1, Rule{Op: OpGetattr, Name: "x.lock", Errno: syscall.EIO, Times: 1},
		Rule{Op: OpLookup, Name: "x.lock.last.1", Action: Delay, Delay: 300 * time.Millisecond, Times: 1})
	defer f.Clear()
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(ctx) }()
	handingOn := func() bool { return fired(f, "x.lock.last.1") }
	var lockErr error
	returned := false
	for deadline := time.Now().Add(10 * time.Second); !handingOn(); time.Sleep(time.Millisecond) { // polling the fault log, with a deadline
		if len(got) > 0 {
			lockErr, returned = <-got, true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter neither handed on nor returned within 10s (faults: %v)", f.Faults())
		}
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if !returned {
		lockErr = <-got
	}
	if lockErr != nil {
		// Told, not handed on: an error naming the lock.
		var pe *fs.PathError
		if !errors.As(lockErr, &pe) || !errors.Is(lockErr, syscall.EIO) {
			t.Fatalf("the waiter's Lock: %v; want the stat's EIO in an *fs.PathError", lockErr)
		}
		t.Logf("the waiter's Lock: %v (faults: %v)", lockErr, f.Faults())
		return
	}
	defer waiter.Unlock()
	if tok := waiter.Token(); tok <= held {
		t.Fatalf("the waiter holds token %d, not above its predecessor's %d (faults: %v)", tok, held, f.Faults())
	}
	t.Logf("the waiter holds token %d after its predecessor's %d (faults: %v)", waiter.Token(), held, f.Faults())
}

// TestJoinLeavesQueueFirst: a queued reader that joins the group holding
// P (no writer queues any more) leaves the queue first. When that removal
// failed, the reader joined anyway, and its queue record — naming this
// live process — was handed the lock once the group dissolved: a record no
// one would release, and writers waited for ever. It now joins only once
// its queue record is gone.
func TestJoinLeavesQueueFirst(t *testing.T) {
	f := MountT(t, Options{})
	dir := "joinqueue"
	lk := lockKinds[1]
	reader := lk.newIn(t, f, dir, opts()...).(*dotlock.RWMutex)
	bpath := filepath.Join(f.Backing, dir, "x.lock")
	group, err := lockdir.New(bpath, opts()...) // beside the faults
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := group.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	// A writer queues (a live one: this process), so the reader queues
	// behind it rather than join.
	queue := bpath + ".queue"
	if err := os.Mkdir(queue, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writerRec := filepath.Join(queue, fmt.Sprintf("%020d.w.%s", 1, w.UUID))
	if err := os.WriteFile(writerRec, w.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- reader.RLock(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) { // polling the queue, with a deadline
		if names, _ := filepath.Glob(filepath.Join(queue, "*.r.*")); len(names) > 0 {
			break
		}
		if len(got) > 0 || time.Now().After(deadline) {
			t.Fatalf("the reader did not queue within 10s")
		}
	}
	// The writer gives up; the reader's first removal of its queue record
	// fails.
	f.Set(1, Rule{Op: OpUnlink, Name: "*.r.*", Errno: syscall.EIO, Times: 1})
	defer f.Clear()
	if err := os.Remove(writerRec); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("RLock: %v", err)
	}
	if err := reader.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if err := group.RUnlock(); err != nil {
		t.Fatal(err)
	}
	after, err := lockdir.New(bpath, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := after.TryLock(); err != nil {
		left, _ := filepath.Glob(filepath.Join(bpath+"*", "*"))
		t.Fatalf("after both readers left (faults: %v), TryLock: %v; left: %v", f.Faults(), err, left)
	}
	if err := after.Unlock(); err != nil {
		t.Fatal(err)
	}
	if len(f.Faults()) == 0 {
		t.Fatalf("the reader's queue record was never removed through the mount: the test did not test")
	}
}
