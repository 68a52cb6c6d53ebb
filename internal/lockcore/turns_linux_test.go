package lockcore

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// W7's rules for a waiter that has not waited long: a mark counts if made
// after the record the waiter last saw at P, and once (a live long waiter
// marks again; a stale mark costs one give-way); with no record seen,
// nothing counts. A long waiter marks P.want, at most every half window,
// and only once it has waited longWait windows.
func TestTurnsMarkRules(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.lock")
	l := newFileLock(t, p, WithHandoff(20*time.Millisecond))
	want := p + wantSuffix
	if err := os.WriteFile(want, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	setMark := func(at time.Time) {
		if err := os.Chtimes(want, at, at); err != nil {
			t.Fatal(err)
		}
	}

	short := l.newWaitState()
	short.net = &netWait{since: time.Now()}
	setMark(base.Add(time.Second))
	if short.longWaiterMarked(true) {
		t.Errorf("no record seen at P: a mark counted")
	}
	short.net.heldAt = base
	if !short.longWaiterMarked(false) || !short.longWaiterMarked(true) {
		t.Fatalf("a mark after the record seen at P did not count")
	}
	if short.longWaiterMarked(true) {
		t.Errorf("the same mark counted twice: a stale one would cost a give-way at every release")
	}
	setMark(base.Add(2 * time.Second))
	if !short.longWaiterMarked(true) {
		t.Errorf("a new mark (the long waiter still there) did not count")
	}
	setMark(base.Add(-time.Second))
	if short.longWaiterMarked(true) {
		t.Errorf("a mark older than the record seen at P counted")
	}

	// Marking: not before longWait windows, then at most every half window.
	setMark(base)
	long := l.newWaitState()
	long.net = &netWait{since: time.Now()}
	long.markLong()
	if st, _ := os.Stat(want); !st.ModTime().Equal(base) {
		t.Errorf("a waiter that has not waited long marked P.want")
	}
	long.net.since = time.Now().Add(-longWait * l.handoffWindow())
	long.markLong()
	st, _ := os.Stat(want)
	if !st.ModTime().After(base) {
		t.Fatalf("a long waiter did not mark P.want")
	}
	setMark(base)
	long.markLong()
	if st, _ := os.Stat(want); !st.ModTime().Equal(base) {
		t.Errorf("a long waiter marked again within half a window")
	}
}
