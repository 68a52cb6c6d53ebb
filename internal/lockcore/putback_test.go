package lockcore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// moverWindow plays a guard holder that moved the record at the path
// aside for a moment, as an acquirer giving its entry up, a breaker's B4
// or a group's change does before putting back what is not its own: it
// takes the guard (a live breaker record of this process), moves the
// record out, and returns what puts it back and drops the guard.
func moverWindow(t *testing.T, l *Lock) (putBack func()) {
	t.Helper()
	guard := l.store.Path() + ".break"
	o, err := stale.Self(0, stale.ModeBreaker, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(guard, o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := l.kind.ownerPath()
	aside := filepath.Join(filepath.Dir(l.store.Path()), "moved-aside")
	if err := os.Rename(rec, aside); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Rename(aside, rec); err != nil {
			t.Error(err)
		}
		if err := os.Remove(guard); err != nil {
			t.Error(err)
		}
	}
}

// openerOf returns newFileLock or newDirLock.
func openerOf(kind string) func(*testing.T, string, ...Option) *Lock {
	if kind == "lockdir" {
		return newDirLock
	}
	return newFileLock
}

// TestReleaseDuringPutBack: a holder releasing within its lease while a
// guard holder has its record aside must not call the hold lost (and
// walk away from a record, put back a moment later, that names its live
// process: no one on its host would ever break it). It decides under the
// guard. Seen in two-host chaos on sshfs: "lock lost: the record at the
// path is no longer ours (owner record: empty ...)", 22 ms after the
// hold's last proof.
func TestReleaseDuringPutBack(t *testing.T) {
	for _, kind := range []string{"lockfile", "lockdir"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			open := openerOf(kind)
			l := open(t, path)
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			tok := l.Token()
			putBack := moverWindow(t, l)
			got := make(chan error, 1)
			go func() { got <- l.Unlock() }()
			select {
			case err := <-got:
				putBack()
				t.Fatalf("Unlock while the record was aside under the guard returned %v before the guard was dropped", err)
			case <-time.After(50 * time.Millisecond):
			}
			putBack()
			if err := <-got; err != nil {
				t.Fatalf("Unlock once the record was put back: %v", err)
			}
			next := open(t, path)
			if err := next.TryLock(); err != nil {
				t.Fatalf("the lock is not free after the release: %v", err)
			}
			if next.Token() != tok+1 {
				t.Errorf("next token %d, want %d", next.Token(), tok+1)
			}
			next.Unlock()
		})
	}
}

// TestHeartbeatDuringPutBack: likewise a heartbeat within the lease
// decides under the guard, and the hold is not lost.
func TestHeartbeatDuringPutBack(t *testing.T) {
	for _, kind := range []string{"lockfile", "lockdir"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			beats := make(chan error, 100)
			l := openerOf(kind)(t, path, WithStaleAfter(2*time.Second), WithHeartbeat(10*time.Millisecond),
				WithAfterBeat(func(err error) {
					select {
					case beats <- err:
					default:
					}
				}))
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			putBack := moverWindow(t, l)
			// A beat starts while the record is aside; it waits for the guard.
			select {
			case <-l.Lost():
				putBack()
				t.Fatal("the hold was called lost while its record was aside under the guard")
			case <-time.After(100 * time.Millisecond):
			}
			putBack()
			for range 3 { // beats after the put-back prove the hold
				if err := <-beats; err != nil && errors.Is(err, ErrLost) {
					t.Fatalf("a beat after the put-back: %v", err)
				}
			}
			select {
			case <-l.Lost():
				t.Fatal("the hold was lost")
			default:
			}
			if err := l.Unlock(); err != nil {
				t.Fatalf("Unlock: %v", err)
			}
		})
	}
}
