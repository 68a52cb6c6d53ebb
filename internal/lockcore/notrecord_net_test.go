package lockcore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
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
		l := newFileLock(t, path, WithGrace(grace))
		l.exact = local
		err := l.TryLock()
		switch {
		case local && !errors.Is(err, ErrNotLock):
			t.Errorf("local: TryLock = %v, want ErrNotLock at once", err)
		case !local:
			var le *LockedError
			if !errors.As(err, &le) || le.Cause != dotlock.BeingWritten {
				t.Errorf("network: TryLock = %v, want ErrLocked (BeingWritten) within the grace period", err)
			}
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
		if got, _ := os.ReadFile(path); string(got) != string(data) {
			t.Errorf("local=%v: the file changed to %q", local, got)
		}
	}
}
