package lockcore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Lost with nothing held — before the first hold, and after the last
// release — is a closed channel (never nil: a select on it does not block
// for ever); a hold's own channel stays open while it is held, and Unlock
// does not close it (only a loss does).
func TestLostWithoutHold(t *testing.T) {
	for _, dir := range []bool{false, true} {
		path := filepath.Join(testdir.New(t), "x.lock")
		l := newFileLock
		if dir {
			l = newDirLock
		}
		h := l(t, path)
		if ch := h.Lost(); ch == nil || !closed(ch) {
			t.Errorf("dir %v: Lost before any hold: nil %v, closed %v; want a closed channel", dir, ch == nil, closed(ch))
		}
		if err := h.TryLock(); err != nil {
			t.Fatal(err)
		}
		held := h.Lost()
		if closed(held) {
			t.Errorf("dir %v: Lost while held is closed", dir)
		}
		if err := h.Unlock(); err != nil {
			t.Fatal(err)
		}
		if !closed(h.Lost()) {
			t.Errorf("dir %v: Lost after Unlock is not closed", dir)
		}
		if closed(held) {
			t.Errorf("dir %v: the released hold's channel was closed by Unlock; it is closed only by a loss", dir)
		}
	}
}

// With several shared holds on one handle, Token and Lost are the newest
// remaining hold's, and RUnlock releases the newest: after RLock, RLock,
// RUnlock, the first RLock's hold remains and is reported.
func TestTokenSharedHolds(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newDirLock(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	first, firstLost := l.Token(), l.Lost()
	if err := l.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.Token(); got <= first {
		t.Errorf("Token with two shared holds = %d; want the second's, greater than the first's %d", got, first)
	}
	if l.Lost() == firstLost {
		t.Errorf("Lost with two shared holds is the first hold's; want the newest's")
	}
	if err := l.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if got := l.Token(); got != first {
		t.Errorf("Token after RLock, RLock, RUnlock = %d; want %d, the remaining hold's", got, first)
	}
	if l.Lost() != firstLost {
		t.Errorf("Lost after RLock, RLock, RUnlock is not the remaining hold's")
	}
	rs, err := l.Readers()
	if err != nil || len(rs) != 1 || rs[0].Token != first {
		t.Errorf("readers on disk after RUnlock: %v, %v; want the one of token %d", rs, err, first)
	}
	if err := l.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if got := l.Token(); got != 0 || !closed(l.Lost()) {
		t.Errorf("after the last RUnlock: Token %d, Lost closed %v; want 0, closed", got, closed(l.Lost()))
	}
}

// Shared holds taken together by several goroutines of one handle may be
// installed in any order; the newest is still the one with the greatest
// token.
func TestTokenSharedHoldsInstalledOutOfOrder(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	// No beat while the test runs: these holds have no record.
	l := newDirLock(t, path, WithStaleAfter(4*time.Hour), WithHeartbeat(time.Hour))
	var hs []*hold
	for _, tok := range []uint64{6, 5, 7, 4} {
		h := l.newHold(stale.Owner{Token: tok}, nil, time.Now())
		hs = append(hs, h)
		l.installShared(h)
	}
	t.Cleanup(func() {
		for _, h := range hs {
			l.stopHeartbeat(h)
		}
	})
	for _, want := range []uint64{7, 6, 5, 4} {
		if got := l.Token(); got != want {
			t.Errorf("Token = %d, want %d", got, want)
		}
		l.mu.Lock()
		l.readers = l.readers[:len(l.readers)-1] // as RUnlock takes the newest
		l.mu.Unlock()
	}
}
