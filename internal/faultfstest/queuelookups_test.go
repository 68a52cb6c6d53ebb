//go:build linux

package faultfstest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dotlock/dotlock/lockdir"
)

// TestSharedHoldLooksUpQueueTwice: with no one waiting, a shared hold
// needs the queue P.queue twice: to join (no writer waits) and, when the
// group dissolves, to hand on (no one waits). The dissolve also looked
// the free P up before the queue and tried to remove the missing queue;
// each lookup is a request to a network filesystem's server.
func TestSharedHoldLooksUpQueueTwice(t *testing.T) {
	f := MountT(t, Options{})
	l, err := lockdir.New(filepath.Join(f.Mount, "x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const rounds = 20
	f.Set(1, Rule{Op: OpLookup, Name: "x.lock.queue", Action: Delay}) // counted
	for range rounds {
		if err := l.RLock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.RUnlock(); err != nil {
			t.Fatal(err)
		}
	}
	lookups := len(f.Faults())
	f.Clear()
	t.Logf("per RLock+RUnlock: %.1f lookups of P.queue", float64(lookups)/rounds)
	if lookups > 2*rounds {
		t.Errorf("%d lookups of P.queue in %d rounds: want at most 2 a round (join, hand on)", lookups, rounds)
	}
}
