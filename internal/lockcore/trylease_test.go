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

// TestTriesWatchTheLease: a handle's TryLocks watch a holder on another
// host together. Tried again and again, they take the lock once its record
// has stayed unchanged for the lease — and never while it heartbeats.
// Before, each TryLock saw the record for the first time, and a lock whose
// holder died on another host was never taken by tries alone (a
// semaphore's Acquire is made of them: TestLicenceTwoHosts).
func TestTriesWatchTheLease(t *testing.T) {
	const lease = 500 * time.Millisecond
	for _, kind := range []string{"lockfile", "lockdir"} {
		for _, beating := range []bool{false, true} {
			name := kind + "/dead"
			if beating {
				name = kind + "/heartbeating"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(testdir.New(t), "x.lock")
				o, err := stale.Self(41, stale.ModeExclusive, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				o.Host, o.BootID = "elsewhere", "boot-elsewhere-0000"
				record := path
				if kind == "lockdir" {
					if err := os.Mkdir(path, 0o755); err != nil {
						t.Fatal(err)
					}
					record = filepath.Join(path, OwnerFile)
				}
				write := func(beat uint64) error { // whole, as a holder's heartbeat is
					o.Beat, o.BeatTime = beat, time.Now()
					if err := os.WriteFile(record+".new", o.Marshal(), 0o644); err != nil {
						return err
					}
					return os.Rename(record+".new", record)
				}
				if err := write(0); err != nil {
					t.Fatal(err)
				}
				window := 10 * lease // a dead holder's: taken after the lease
				if beating {
					window = 3 * lease // a live one's: never taken
					stop := make(chan struct{})
					done := make(chan error, 1)
					go func() {
						for beat := uint64(1); ; beat++ {
							select {
							case <-stop:
								done <- nil
								return
							case <-time.After(lease / 20):
							}
							if err := write(beat); err != nil {
								done <- err
								return
							}
						}
					}()
					defer func() {
						close(stop)
						if err := <-done; err != nil {
							t.Error(err)
						}
					}()
				}
				l := openerOf(kind)(t, path, WithStaleAfter(lease))
				start := time.Now()
				for time.Since(start) < window {
					err := l.TryLock()
					if err == nil {
						took := time.Since(start)
						if beating {
							t.Fatalf("a TryLock took the lock from a holder on another host that heartbeats, after %v", took)
						}
						if took < lease {
							t.Fatalf("took the lock after %v, before the lease (%v) passed", took, lease)
						}
						if l.Token() <= 41 {
							t.Fatalf("token %d after the holder's 41", l.Token())
						}
						l.Unlock()
						return
					}
					if !errors.Is(err, ErrLocked) {
						t.Fatal(err)
					}
					time.Sleep(20 * time.Millisecond)
				}
				if !beating {
					t.Fatalf("TryLock tried for %v (the lease: %v) and never took the lock from a holder on another host that stopped heartbeating", window, lease)
				}
			})
		}
	}
}
