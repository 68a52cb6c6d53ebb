package lockcore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// On a network filesystem, content no record has must stand for the grace
// period before it is called not a lock (a client's cache can show such
// bytes for a moment where a record is being replaced); on a local one it
// is told at once. Either way the file is left as it was.
func TestNotRecordOnNetworkWaitsOutGrace(t *testing.T) {
	const grace = 100 * time.Millisecond
	for _, local := range []bool{true, false} {
		dir := testdir.New(t)
		path := filepath.Join(dir, "x.lock")
		data := []byte("1\n2\n3\n")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		testNotRecordAt(t, path, path, data, local, grace)
	}
}

// testNotRecordAt: the foreign content at side (the lock path itself, the
// guard or the last record) is reported as not a lock at once where reads
// are exact, after standing for the grace period where they are not, and
// is left as it was.
func testNotRecordAt(t *testing.T, path, side string, data []byte, local bool, grace time.Duration) {
	t.Helper()
	{
		l := newFileLock(t, path, WithGrace(grace))
		l.exact = local
		tryStart := time.Now()
		err := l.TryLock()
		var le *LockedError
		switch {
		case local && !errors.Is(err, ErrNotLock):
			t.Errorf("local: TryLock = %v, want ErrNotLock at once", err)
		case local:
		case errors.Is(err, ErrNotLock):
			// A try waits up to 1 s for a guard: it may wait the grace out.
			if took := time.Since(tryStart); took < grace/2 {
				t.Errorf("network: TryLock refused after %v, before the content stood for the grace period", took)
			}
		case !errors.As(err, &le):
			t.Errorf("network: TryLock = %v, want ErrLocked within the grace period, or ErrNotLock after it", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*grace)
		start := time.Now()
		err = l.Lock(ctx)
		cancel()
		if !errors.Is(err, ErrNotLock) {
			t.Errorf("local=%v: Lock = %v, want ErrNotLock", local, err)
		}
		if took := time.Since(start); !local && took < grace/2 {
			t.Errorf("network: Lock refused after %v, before the content stood for the grace period", took)
		}
		if got, _ := os.ReadFile(side); string(got) != string(data) {
			t.Errorf("local=%v: %s changed to %q", local, side, got)
		}
	}
}

// The same for the breaker guard and the last record: one rule
// (notRecordYet) for every record a lock reads.
func TestNotRecordOnNetworkSidePaths(t *testing.T) {
	const grace = 100 * time.Millisecond
	for _, suffix := range []string{guardSuffix, ".last"} {
		for _, local := range []bool{true, false} {
			path := filepath.Join(testdir.New(t), "x.lock")
			data := []byte("my notes\n")
			if err := os.WriteFile(path+suffix, data, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Run(suffix, func(t *testing.T) { testNotRecordAt(t, path, path+suffix, data, local, grace) })
		}
	}
}
