package lockcore

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

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
		})
	}
}
