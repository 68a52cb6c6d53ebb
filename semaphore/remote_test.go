package semaphore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/semaphore"
	"github.com/dotlock/dotlock/stale"
)

// TestRemoteHolderLapses: a slot whose holder is on another host (its
// record's host is not this one) and no longer heartbeats is taken again
// once its lease has passed unchanged: Acquire, which waits, must watch it
// for the lease, as a lock's Lock does. (A slot taken only by TryLocks,
// each a single look, would never be reclaimed from this host: seen in
// TestLicenceTwoHosts, where no worker on the dead holder's host was left
// to reclaim it.)
func TestRemoteHolderLapses(t *testing.T) {
	const lease = 300 * time.Millisecond
	dir := testdir.New(t)
	sem, err := semaphore.New(filepath.Join(dir, "sem"), 1, dotlock.WithStaleAfter(lease))
	if err != nil {
		t.Fatal(err)
	}
	o, err := stale.Self(41, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.BootID = "elsewhere", "boot-elsewhere-0000"
	if err := os.WriteFile(filepath.Join(dir, "sem", "slot.0"), o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*lease)
	defer cancel()
	start := time.Now()
	slot, err := sem.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire with the only slot held by a holder on another host that stopped heartbeating: %v (after %v; lease %v)", err, time.Since(start), lease)
	}
	defer slot.Release()
	if took := time.Since(start); took < lease {
		t.Errorf("took the slot after %v, before the remote holder's lease (%v) passed", took, lease)
	}
	if slot.Token() <= 41 {
		t.Errorf("token %d after the remote holder's 41", slot.Token())
	}
}
