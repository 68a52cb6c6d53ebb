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
	q := handedTo(t, l, clk.Now())
	rec, owner := q.me, q.path
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
	h, _, _, err := q.handedOver(ctx)
	if err != nil || h != nil {
		t.Fatalf("handedOver a lease late, a breaker holding the guard: hold %t, %v; want no hold (not proven)", h != nil, err)
	}

	if err := os.Remove(guard); err != nil {
		t.Fatal(err)
	}
	h, _, _, err = q.handedOver(context.Background())
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
	if h, _, _, err = q.handedOver(context.Background()); err != nil || h == nil || !h.lastBeat.Equal(q.looked) {
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

// handedTo makes the lock directory of l, handed (S4) to a queued writer
// whose last look was at looked, and returns that waiter.
func handedTo(t *testing.T, l *Lock, looked time.Time) *queuedWait {
	t.Helper()
	rec, err := stale.Self(1, stale.ModeExclusive, looked)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(l.store.Path(), 0o755); err != nil {
		t.Fatal(err)
	}
	owner := filepath.Join(l.store.Path(), OwnerFile)
	if err := os.WriteFile(owner, rec.Marshal(), 0o644); err != nil { // as S4 hands it on
		t.Fatal(err)
	}
	return &queuedWait{l: l, rw: l.rw, ws: l.newWaitState(), writer: true, me: rec, path: owner, name: "gone", looked: looked}
}

// deadGuard plants at l's guard path the record of a breaker on another
// host that died there: judged by the guard's lease, watched over time.
func deadGuard(t *testing.T, l *Lock) {
	t.Helper()
	b, err := stale.Self(0, stale.ModeBreaker, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.Host = "elsewhere"
	if err := os.WriteFile(l.guard.Path(), b.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A waiter proving a late hand-over breaks a guard whose holder died on
// another host, once it has watched it unchanged for the guard's lease,
// as any waiter does; it used to forget what it watched at each try, wait
// for the guard until its context ended, and leave the lock unused (CI,
// TestCluster chaos on smb-nolease: a worker's Lock ran out of its 3
// minutes while the lock was free).
func TestProveAdoptedBreaksDeadGuard(t *testing.T) {
	const lease = 100 * time.Millisecond
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newDirLock(t, path, WithStaleAfter(lease))
	// Its last look a lease ago: the hand-over must be proven first.
	q := handedTo(t, l, time.Now().Add(-lease))
	deadGuard(t, l)
	// A waiter that never breaks the guard waits until its context ends:
	// 20 guard leases.
	ctx, cancel := context.WithTimeout(context.Background(), 20*l.guardLease())
	defer cancel()
	h, _, _, err := q.handedOver(ctx)
	if err != nil || h == nil {
		t.Fatalf("handedOver a lease late, the guard left by a breaker dead elsewhere: hold %t, %v (context: %v); want the hold, proven once the guard was broken", h != nil, err, ctx.Err())
	}
	if err := l.release(h); err != nil {
		t.Fatal(err)
	}
}

// A holder whose hold lapsed proves it under the guard (H3); a guard left
// by a breaker that died on another host is broken by the holder's own
// beats once they have watched it for the guard's lease, when no waiter
// is there to break it. Each beat used to watch it afresh, and the hold
// stayed unproven for as long as the guard stood.
func TestBeatBreaksDeadGuard(t *testing.T) {
	const lease = 100 * time.Millisecond
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newFileLock(t, path, WithStaleAfter(lease), WithManualHeartbeat())
	if err := l.TryLock(); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	l.mu.Lock()
	h := l.hold
	l.mu.Unlock()
	deadGuard(t, l)
	planted := time.Now().Add(-lease) // lapsed: stalled past half the lease
	h.beatMu.Lock()
	h.lastBeat = planted
	h.beatMu.Unlock()
	proven := func() bool { // by a beat since, however long ago
		h.beatMu.Lock()
		defer h.beatMu.Unlock()
		return h.lastBeat.After(planted)
	}
	for i := 0; i < 200 && !proven(); i++ { // 200 beats, 10 ms apart: 5 guard leases
		l.Beat()
		time.Sleep(10 * time.Millisecond) // the beats' spacing, not a wait for an event
	}
	if !proven() {
		t.Fatalf("a lapsed hold beat 200 times, 10 ms apart, with a dead breaker's guard (lease %v): still not proven", l.guardLease())
	}
	if _, err := os.Lstat(l.guard.Path()); err == nil {
		t.Errorf("the dead breaker's guard is still there")
	}
}

// Adopt proves the hold it takes over under the guard, and waits for the
// guard up to the guard's lease and a grace period: a guard left by a
// breaker that died on another host is broken, not taken for the hold's
// absence. Waiting only StaleAfter (a quarter of the guard's lease), Adopt
// said "no hold with uuid …" with the hold there.
func TestAdoptBreaksDeadGuard(t *testing.T) {
	const lease = 100 * time.Millisecond
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newFileLock(t, path, WithStaleAfter(lease))
	rec, err := stale.Self(1, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, rec.Marshal(), 0o644); err != nil { // as HandOver leaves it
		t.Fatal(err)
	}
	deadGuard(t, l)
	if _, err := l.Adopt(rec.UUID, false); err != nil {
		t.Fatalf("Adopt with a guard left by a breaker dead elsewhere (guard lease %v): %v; want the hold, proven once the guard was broken", l.guardLease(), err)
	}
	defer l.Unlock()
	if _, err := os.Lstat(l.guard.Path()); err == nil {
		t.Errorf("the dead breaker's guard is still there")
	}
}
