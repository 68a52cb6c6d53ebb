package lockcore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// W4: P.want, where waiters of a lock file announce themselves, is shared by
// all of them. A waiter that was served used to remove it, and with it the
// announcement of every waiter still waiting: a waiter on another host (it
// polls) or one that had just announced itself again did not learn of it
// until the next release, when the releaser, coming straight back, found no
// one waiting and went ahead of it (TestProcesses/NoBarging, in CI). Now
// only a handoff window that passes with no taker removes it.
func TestAnnouncementOutlivesServedWaiter(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	newLock := func() *Lock {
		// PollMax sets the handoff window: 2 ms, so the stale case is quick.
		l, err := New(path, func(abs string) Store { return NewFileStore(abs) }, WithPoll(time.Millisecond, 2*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holder, served := newLock(), newLock()
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	// A waiter elsewhere announces itself, as one on another host does.
	want := path + wantSuffix
	if err := os.WriteFile(want, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	served.cfg.OnWait = func(*LockedError) {
		select {
		case <-waiting:
		default:
			close(waiting)
		}
	}
	done := make(chan error, 1)
	go func() { done <- served.Lock(ctx) }()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("Lock returned %v while another handle holds", err)
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting Lock: %v", err)
	}
	if _, err := os.Lstat(want); err != nil {
		t.Errorf("after one waiter was served, the others' announcement: %v; want it still there", err)
	}

	// The served waiter releases and comes straight back: it lets the
	// announced waiter in first, and when the window passes with no taker
	// (this one is gone), removes the stale announcement.
	if err := served.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := served.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(want); !os.IsNotExist(err) {
		t.Errorf("after a handoff window with no taker, the announcement: %v; want it removed", err)
	}
	if err := served.Unlock(); err != nil {
		t.Fatal(err)
	}
}
