package lockcore

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// TestDropWaitsForBeat: Drop returns only once a heartbeat under way has
// finished, no beat follows it, and the lock is left as it is. The
// command's keeper drops a hold released for it before it exits; an exit
// during a beat that decided under the guard left an empty guard behind,
// and `dotlock -n` after `dotlock -u` waited for it and failed (CI,
// TestLockPidAcrossSteps).
func TestDropWaitsForBeat(t *testing.T) {
	for _, kind := range []string{"lockfile", "lockdir"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			inBeat, finish := make(chan struct{}, 1), make(chan struct{})
			var dropped atomic.Bool
			var beatsAfter atomic.Int32
			l := openerOf(kind)(t, path, WithHeartbeat(5*time.Millisecond),
				WithAfterBeat(func(error) { // runs within the beat
					if dropped.Load() {
						beatsAfter.Add(1)
					}
					select {
					case inBeat <- struct{}{}:
						<-finish
					default:
					}
				}))
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			<-inBeat // a beat is under way and waits for finish
			done := make(chan struct{})
			go func() {
				l.Drop()
				dropped.Store(true)
				close(done)
			}()
			select {
			case <-done:
				t.Fatal("Drop returned while a heartbeat was under way")
			case <-time.After(50 * time.Millisecond):
			}
			close(finish)
			<-done
			time.Sleep(30 * time.Millisecond) // six heartbeat periods: none may run
			if n := beatsAfter.Load(); n != 0 {
				t.Fatalf("%d heartbeats ran after Drop", n)
			}
			if err := l.Unlock(); !errors.Is(err, ErrNotHeld) {
				t.Fatalf("Unlock after Drop: %v, want ErrNotHeld", err)
			}
			st, err := l.Status()
			if err != nil || !st.Held {
				t.Fatalf("after Drop the lock is not held any more (%v): Drop must leave it as it is", err)
			}
			other := openerOf(kind)(t, path)
			if err := other.TryLock(); !errors.Is(err, ErrLocked) {
				t.Fatalf("another handle's TryLock after Drop: %v, want ErrLocked", err)
			}
			if err := l.TryLock(); !errors.Is(err, ErrLocked) { // free to try: the handle holds nothing
				t.Fatalf("the handle's own TryLock after Drop: %v, want ErrLocked (the lock is still the dropped hold's)", err)
			}
		})
	}
}

// TestManualBeat: a handle made WithManualHeartbeat never beats by itself;
// Beat beats each hold once, and a hold found lost is published once
// (Lost closed) and never beaten again.
func TestManualBeat(t *testing.T) {
	for _, kind := range []string{"lockfile", "lockdir"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			var beats, losses atomic.Int32
			l := openerOf(kind)(t, path, WithHeartbeat(2*time.Millisecond), WithManualHeartbeat(),
				WithAfterBeat(func(err error) {
					beats.Add(1)
					if errors.Is(err, ErrLost) {
						losses.Add(1)
					}
				}))
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // ten heartbeat periods
			if n := beats.Load(); n != 0 {
				t.Fatalf("%d beats without Beat", n)
			}
			l.Beat()
			if n := beats.Load(); n != 1 {
				t.Fatalf("Beat beat %d times, want 1", n)
			}
			other := openerOf(kind)(t, path)
			st, err := other.Status()
			if err != nil || len(st.Holders) != 1 {
				t.Fatalf("status: %+v, %v", st, err)
			}
			if err := other.ReleaseFor(st.Holders[0].Owner); err != nil {
				t.Fatal(err)
			}
			l.Beat() // finds the record gone: lost
			l.Beat() // lost already: no beat
			select {
			case <-l.Lost():
			default:
				t.Fatal("a Beat that found the record gone did not publish the loss")
			}
			if n, lost := beats.Load(), losses.Load(); n != 2 || lost != 1 {
				t.Fatalf("beats %d (losses %d), want 2 (1): a lost hold must not be beaten again", n, lost)
			}
			if err := l.Unlock(); !errors.Is(err, ErrLost) { // and closes the entry (Windows cannot remove an open file)
				t.Fatalf("Unlock after the loss: %v, want ErrLost", err)
			}
		})
	}
}
