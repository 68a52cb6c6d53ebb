package lockcore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// A lock handed to a waiter (S4) is judged by others from when they first
// saw its record, not from when the waiter found it. A waiter that noticed
// its hand-over a lease late credited itself with a proof at that moment
// and started to rely on the lock, while another host that had watched the
// record unchanged since it was written was breaking it (TestCluster chaos
// on NFS v4.2: Unlock said the hold was lost, taken by the other host,
// though it had last proved itself 2.7 s before, lease 3 s). Now the hold
// is credited only from the waiter's last look that found nothing handed,
// and one older than half the lease is proven under the guard before the
// waiter takes it.
func TestLateAdoptionProvesFirst(t *testing.T) {
	const lease = time.Second
	clk := &stepClock{t: time.Now()}
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newDirLock(t, path, WithClock(clk), WithStaleAfter(lease))
	rec, err := stale.Self(1, stale.ModeExclusive, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := filepath.Join(path, OwnerFile)
	if err := os.WriteFile(owner, rec.Marshal(), 0o644); err != nil { // as S4 hands it on
		t.Fatal(err)
	}
	q := &queuedWait{l: l, rw: l.rw, ws: l.newWaitState(), writer: true, me: rec, path: owner, name: "gone", looked: clk.Now()}
	clk.add(lease) // the hand-over noticed a lease after the last look

	// A breaker is at work (this process's: alive, so it stays).
	b, err := stale.Self(0, stale.ModeBreaker, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	guard := l.guard.Path()
	if err := os.WriteFile(guard, b.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond) // the guard stays held
	defer cancel()
	h, _, err := q.handedOver(ctx)
	if err != nil || h != nil {
		t.Fatalf("handedOver a lease late, a breaker holding the guard: hold %t, %v; want no hold (not proven)", h != nil, err)
	}

	if err := os.Remove(guard); err != nil {
		t.Fatal(err)
	}
	h, _, err = q.handedOver(context.Background())
	if err != nil || h == nil {
		t.Fatalf("handedOver a lease late, the guard free: hold %t, %v; want the hold, proven", h != nil, err)
	}
	if !h.lastBeat.Equal(clk.Now()) {
		t.Errorf("the adopted hold's last proof is %v before the clock; want now (proven under the guard)", clk.Now().Sub(h.lastBeat))
	}
	data, err := os.ReadFile(owner)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := stale.Parse(data); err != nil || o.UUID != rec.UUID || o.Beat <= rec.Beat {
		t.Errorf("the record after the adoption's proof: %+v, %v; want ours with a later heartbeat than %d", o, err, rec.Beat)
	}
	if err := l.release(h); err != nil {
		t.Fatal(err)
	}

	// Noticed at once: credited from the last look, no proof needed.
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(owner, rec.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	q.looked = clk.Now()
	clk.add(lease / 4)
	if h, _, err = q.handedOver(context.Background()); err != nil || h == nil || !h.lastBeat.Equal(q.looked) {
		t.Fatalf("handedOver soon after the last look: hold %t, %v; want the hold, its last proof the look", h != nil, err)
	}
	h.entry.Close()
}

// Adopt takes over a hold handed over by another process at a time it
// cannot know by its own clock: the hold is proven (its record's heartbeat
// advanced, under the guard) before Adopt returns it, never credited from
// the adoption.
func TestAdoptProvesFirst(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newFileLock(t, path)
	rec, err := stale.Self(1, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, rec.Marshal(), 0o644); err != nil { // as HandOver leaves it
		t.Fatal(err)
	}
	if _, err := l.Adopt(rec.UUID, false); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := stale.Parse(data); err != nil || o.UUID != rec.UUID || o.Beat <= rec.Beat {
		t.Errorf("the record after Adopt: beat %d, %v; want ours with a heartbeat after %d (proven)", o.Beat, err, rec.Beat)
	}
}
