package lockdir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/lockdir"
)

// A Transform whose hold is lost while fn runs (here its record is
// removed, as a person or a breaker would) leaves the file as it was and
// reports ErrLost: the rename would overwrite what a new holder wrote.
func TestTransformLostLeavesFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows keeps a removed file that is open (delete pending) under its name until it is closed: removing the record does not make the hold lost there")
	}
	name := filepath.Join(testdir.New(t), "data.json")
	if err := os.WriteFile(name, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	lost := make(chan struct{})
	hook := lockcore.WithAfterBeat(func(err error) {
		if errors.Is(err, dotlock.ErrLost) {
			close(lost)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := lockdir.Transform(ctx, name, 0o644, func(old []byte) ([]byte, error) {
		if err := os.Remove(filepath.Join(lockdir.LockPath(name), "owner")); err != nil {
			return nil, err
		}
		select {
		case <-lost:
		case <-ctx.Done():
			return nil, errors.New("the heartbeat never found the hold lost")
		}
		return []byte("new"), nil
	}, dotlock.WithHeartbeat(5*time.Millisecond), hook)
	if !errors.Is(err, dotlock.ErrLost) {
		t.Errorf("Transform after its hold was lost: %v; want ErrLost", err)
	}
	if got, _ := os.ReadFile(name); string(got) != "old" {
		t.Errorf("file holds %q after a lost Transform; want it left as it was (old)", got)
	}
}
