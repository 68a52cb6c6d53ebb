//go:build linux

package faultfstest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dotlock/dotlock/lockfile"
)

// TestLastSlotLookedUpOncePerUse: on a network filesystem each lookup of a
// name is a request to the server, and a lock+unlock names the last-record
// slot P.last three times: A3's read, R2's check of what it replaces, and
// R2's rename. A3 also looked the slot up again after reading it, to see
// that what it read is the file at the name now; that check is for an SMB
// client, which may hand an open a file it kept (readSlot), and elsewhere
// cost a lookup and a getattr per lock+unlock (3 of sshfs's 48 requests).
func TestLastSlotLookedUpOncePerUse(t *testing.T) {
	f := MountT(t, Options{})
	l, err := lockfile.New(filepath.Join(f.Mount, "x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	round := func() {
		t.Helper()
		if err := l.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	round() // P.last exists from here on
	const rounds = 20
	f.Set(1, Rule{Op: OpLookup, Name: "x.lock.last", Action: Delay}, Rule{Op: OpGetattr, Name: "x.lock.last", Action: Delay}) // counted
	for range rounds {
		round()
	}
	faults := f.Faults()
	f.Clear()
	var lookups, getattrs int
	for _, x := range faults {
		if x.Op == OpLookup {
			lookups++
		} else {
			getattrs++
		}
	}
	t.Logf("per lock+unlock: %.1f lookups and %.1f getattrs of P.last", float64(lookups)/rounds, float64(getattrs)/rounds)
	if lookups > 3*rounds {
		t.Errorf("%d lookups of P.last in %d rounds: want at most 3 a round (A3's read, R2's check, R2's rename)", lookups, rounds)
	}
}
