//go:build linux

package faultfstest

import (
	"context"
	"testing"

	"github.com/dotlock/dotlock"
)

// Each call counted here is a request to a network filesystem's server.

// TestSharedHoldLooksUpQueueTwice: with no one waiting, a shared hold
// needs the queue P.queue twice: to join (no writer waits) and, when the
// group dissolves, to hand on (no one waits). The dissolve also looked
// the free P up before the queue and tried to remove the missing queue.
func TestSharedHoldLooksUpQueueTwice(t *testing.T) {
	f := MountT(t, Options{})
	l := newRW(t, f, "queue")
	ctx := context.Background()
	n := countPerRound(t, f, Rule{Op: OpLookup, Name: "x.lock.queue"}, func() error { return l.RLock(ctx) }, l.RUnlock)
	t.Logf("per RLock+RUnlock: %.1f lookups of P.queue", n)
	if n > 2 {
		t.Errorf("%.1f lookups of P.queue a round: want at most 2 (join, hand on)", n)
	}
}

// TestLockDirOpenedOnlyToList: what is done inside a lock directory is
// done through a descriptor of it, which need not open it: only a listing
// does (on sshfs an open is an OPENDIR and a CLOSE, on NFS a GETATTR).
// An exclusive hold lists nothing; a shared hold lists P once, when its
// group dissolves (S5: nothing foreign in it). They opened P four and six
// times.
func TestLockDirOpenedOnlyToList(t *testing.T) {
	f := MountT(t, Options{})
	l := newRW(t, f, "opendir")
	ctx := context.Background()
	opendir := Rule{Op: OpReaddir, Name: "x.lock"} // an OPENDIR, counted as a readdir
	for _, c := range []struct {
		name       string
		lock, free func() error
		want       float64
	}{
		{"exclusive", func() error { return l.Lock(ctx) }, l.Unlock, 0},
		{"shared", func() error { return l.RLock(ctx) }, l.RUnlock, 1},
	} {
		n := countPerRound(t, f, opendir, c.lock, c.free)
		t.Logf("%s: %.1f opens (OPENDIR) of P per lock+unlock", c.name, n)
		if n != c.want { // exactly: the shared hold's one listing shows the count works
			t.Errorf("%s: P opened %.1f times a round: want %.0f", c.name, n, c.want)
		}
	}
}

// TestSharedHoldLooksUpItsDirectory counts the lookups of the directory
// a lock is in (on sshfs each is a request to the server). A shared hold
// makes two guard sections (B1 to B5), and each works inside that
// directory through one descriptor of it: one lookup a section, for the
// guard's own calls and for the group's (S1, S5: P, its records, P.last,
// P.queue). By name each call looked it up: 28 lookups a round, 18 with
// the guard's calls through the descriptor, 2 now (the first round looks
// it up once more).
func TestSharedHoldLooksUpItsDirectory(t *testing.T) {
	f := MountT(t, Options{})
	l := newRW(t, f, "d")
	ctx := context.Background()
	n := countPerRound(t, f, Rule{Op: OpLookup, Name: "d"}, func() error { return l.RLock(ctx) }, l.RUnlock)
	t.Logf("per RLock+RUnlock: %.1f lookups of the lock's directory", n)
	if n < 2 || n > 2.2 { // at least the two sections': the count works
		t.Errorf("%.1f lookups of the lock's directory a round: want 2 to 2.2 (one per guard section)", n)
	}
}

// TestLockLooksUpItsDirectory counts the lookups of the directory a lock
// is in, per exclusive Lock+Unlock. An attempt and a release each make
// their calls on the names beside the lock (P, its last-record slots,
// P.break, P.queue) through one descriptor of that directory: a lookup
// each, where by name each call looked it up (lockfile 9 a round, lockdir
// 13). A lock file's W4 looks P.want up by name when it locks again right
// after its own release: one more. (The first round looks it up twice
// more: what filesystem P is on is found out once.)
func TestLockLooksUpItsDirectory(t *testing.T) {
	f := MountT(t, Options{})
	ctx := context.Background()
	for _, c := range []struct {
		kind string
		most float64
	}{{"lockfile", 3.2}, {"lockdir", 2.2}} {
		t.Run(c.kind, func(t *testing.T) {
			dir := "lookups-" + c.kind
			var l dotlock.Locker
			for _, k := range lockKinds {
				if k.kind == c.kind {
					l = k.newIn(t, f, dir)
				}
			}
			n := countPerRound(t, f, Rule{Op: OpLookup, Name: dir}, func() error { return l.Lock(ctx) }, l.Unlock)
			t.Logf("per Lock+Unlock: %.2f lookups of the lock's directory", n)
			if n < 2 || n > c.most { // at least the attempt's and the release's: the count works
				t.Errorf("%.2f lookups of the lock's directory a round: want 2 to %.2f", n, c.most)
			}
		})
	}
}

// newRW is a lockdir lock x.lock in the new directory dir of f.
func newRW(t *testing.T, f *FS, dir string) *dotlock.RWMutex {
	return lockKinds[1].newIn(t, f, dir).(*dotlock.RWMutex)
}

// countPerRound runs 20 rounds of lock then free, and returns how many
// calls matching what (its Op and Name; it is made a zero delay, which
// counts them) each round made on average.
func countPerRound(t *testing.T, f *FS, what Rule, lock, free func() error) float64 {
	const rounds = 20
	f.Set(1, Rule{Op: what.Op, Name: what.Name, Action: Delay})
	defer f.Clear()
	for range rounds {
		if err := lock(); err != nil {
			t.Fatal(err)
		}
		if err := free(); err != nil {
			t.Fatal(err)
		}
	}
	return float64(len(f.Faults())) / rounds
}
