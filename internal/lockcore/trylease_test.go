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
				o := remoteOwner(t, 41, stale.ModeExclusive)
				record := path
				if kind == "lockdir" {
					if err := os.Mkdir(path, 0o755); err != nil {
						t.Fatal(err)
					}
					record = filepath.Join(path, OwnerFile)
				}
				write := func(beat uint64) error { // whole, as a holder's heartbeat is
					o.Beat, o.BeatTime = beat, time.Now()
					tmp := filepath.Join(filepath.Dir(path), "record.new") // not in the lock directory
					if err := os.WriteFile(tmp, o.Marshal(), 0o644); err != nil {
						return err
					}
					err := os.Rename(tmp, record)
					for try := 0; err != nil && try < 100; try++ {
						time.Sleep(time.Millisecond) // Windows: not while a try has it open
						err = os.Rename(tmp, record)
					}
					return err
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

// TestTriesOutlastDeadRemoteGuard: a breaker guard left by a breaker that
// died on another host stands for the guard's lease (4 leases). A TryLock
// meanwhile gives its entry up after its 1 s, under the guard, in the
// background; that cleanup must outlast the guard's lease. It gave up
// after one lease, leaving the entry with a record naming this live
// process, which no try on this host would ever take again.
func TestTriesOutlastDeadRemoteGuard(t *testing.T) {
	const lease = 750 * time.Millisecond // the guard's: 3 s, past a TryLock's 1 s
	for _, kind := range []string{"lockfile", "lockdir"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			o := remoteOwner(t, 0, stale.ModeBreaker)
			if err := os.WriteFile(path+guardSuffix, o.Marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
			l := openerOf(kind)(t, path, WithStaleAfter(lease))
			start := time.Now()
			for time.Since(start) < 12*lease {
				err := l.TryLock()
				if err == nil {
					t.Logf("taken after %v (the guard's lease: %v)", time.Since(start).Round(time.Millisecond), 4*lease)
					l.Unlock()
					return
				}
				if !errors.Is(err, ErrLocked) {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("TryLock tried for %v and never took the lock past a guard left by a dead breaker on another host (the guard's lease: %v)", 12*lease, 4*lease)
		})
	}
}

// remoteOwner is a record of this process as if it ran on another host:
// judged by its lease, never by its PID.
func remoteOwner(t *testing.T, token uint64, mode string) stale.Owner {
	t.Helper()
	o, err := stale.Self(token, mode, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.BootID = "elsewhere", "boot-elsewhere-0000"
	return o
}
