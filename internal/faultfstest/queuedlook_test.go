//go:build linux

package faultfstest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
)

// TestQueuedWriterReadsOwnerOncePerLook: a writer queued for a lock
// directory looks at each wake-up and poll whether the lock was handed to
// it (S3) and, if not, judges its holder: one read of P's record serves
// both. It read the record twice (the hand-over check, then the
// judgement) and looked P up once more: on a network filesystem, twice the
// calls to the server for every waiting process. Each look begins with a
// lookup of the waiter's queue record; the opens of P/owner per look are
// counted.
func TestQueuedWriterReadsOwnerOncePerLook(t *testing.T) {
	f := MountT(t, Options{})
	holder := holdDirFromBacking(t, f, "d") // beside the counting
	defer holder.Unlock()
	waiter, err := lockdir.New(filepath.Join(f.Mount, "d", "x.lock"), dotlock.WithPoll(5*time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- waiter.Lock(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("the waiter's Lock returned %v, want context.Canceled", err)
		}
	}()
	queued(t, filepath.Join(f.Backing, "d", "x.lock.queue"), 1)
	f.Set(1, Rule{Op: OpLookup, Name: "*.w.*", Action: Delay}, Rule{Op: OpOpen, Name: "owner", Action: Delay}) // counted
	time.Sleep(time.Second)
	faults := f.Faults()
	f.Clear()
	var looks, opens int
	for _, x := range faults {
		if x.Rule == 0 {
			looks++
		} else {
			opens++
		}
	}
	t.Logf("in 1 s: %d looks (lookups of the queue record), %d opens of P/owner", looks, opens)
	if looks < 10 {
		t.Fatalf("%d looks in 1 s polling every 5 ms: the waiter is not waiting as it should", looks)
	}
	if float64(opens) > 1.5*float64(looks) {
		t.Errorf("%d opens of P/owner in %d looks: want one per look", opens, looks)
	}
}
