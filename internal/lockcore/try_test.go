package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// TryLock and TryRLock wait for others at most tryWait, whatever stands at
// the breaker guard: an empty guard (one being written, or planted) used to
// be waited for until the grace period passed (5 s), and a guard of a live
// process until StaleAfter+Grace (35 s), after which a try returned a
// deadline error. Now the try reports the guard, as ErrLocked, within the
// bound; the cleanup of its entry goes on in the background.
func TestTryBoundedByGuard(t *testing.T) {
	live, err := stale.Self(0, stale.ModeBreaker, time.Now()) // this process: alive
	if err != nil {
		t.Fatal(err)
	}
	guards := []struct {
		name string
		rec  []byte
	}{{"Empty", nil}, {"Live", live.Marshal()}}
	tries := []struct {
		name    string
		dir     bool
		try     func(*Lock) error
		release func(*Lock) error
	}{
		{"File", false, (*Lock).TryLock, (*Lock).Unlock},
		{"Dir", true, (*Lock).TryLock, (*Lock).Unlock},
		{"DirShared", true, (*Lock).TryRLock, (*Lock).RUnlock},
	}
	// tryWait, and slack for a loaded machine; well under the grace
	// period (5 s), which the empty guard used to be waited for.
	const within = tryWait + 1500*time.Millisecond
	for _, g := range guards {
		for _, tr := range tries {
			t.Run(g.name+"/"+tr.name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(testdir.New(t), "x.lock")
				newLock := newFileLock
				if tr.dir {
					newLock = newDirLock
				}
				l := newLock(t, path)
				if err := os.WriteFile(path+guardSuffix, g.rec, 0o644); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				err := tr.try(l)
				took := time.Since(start)
				if took > within || !errors.Is(err, ErrLocked) {
					t.Fatalf("try with a %s guard planted: %v after %v; want ErrLocked within %v", g.name, err, took.Round(time.Millisecond), within)
				}
				var blk *LockedError
				if !errors.As(err, &blk) || (g.rec != nil && (len(blk.Owners) != 1 || blk.Owners[0].UUID != live.UUID)) {
					t.Errorf("error %v does not name the guard's holder", err)
				}
				// The cleanup of the entry the try made goes on: it needs
				// the guard, which its holder now releases.
				if err := os.Remove(path + guardSuffix); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					_, perr := os.Lstat(path)
					_, gerr := os.Lstat(path + guardSuffix)
					if errors.Is(perr, fs.ErrNotExist) && errors.Is(gerr, fs.ErrNotExist) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("20 s after the try, the lock path (%v) or the guard (%v) is still there", perr, gerr)
					}
				}
				if err := tr.try(l); err != nil {
					t.Fatalf("try once the guard is gone: %v", err)
				}
				if err := tr.release(l); err != nil {
					t.Error(err)
				}
			})
		}
	}
}
