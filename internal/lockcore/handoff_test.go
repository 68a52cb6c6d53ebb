package lockcore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
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
	// PollMax sets the handoff window: 2 ms, so the stale case is quick.
	poll := WithPoll(time.Millisecond, 2*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holder, served := newFileLock(t, path, poll), newFileLock(t, path, poll)
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	// A waiter elsewhere announces itself, as one on another host does.
	want := path + wantSuffix
	if err := os.WriteFile(want, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	served.cfg.OnWait = func(error) {
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
	// An announcement found stale and removed (by a releaser whose window
	// passed) is made again by a waiter still waiting, at its next look.
	if err := os.Remove(want); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Lstat(want); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a waiter still waiting did not announce itself again within 10s of its announcement's removal")
		}
		time.Sleep(time.Millisecond) // polling what the waiter does, with a deadline
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

// A process that released a lock file and comes back does not wait for
// announced waiters once someone else has held the lock since: the handoff
// has happened. Two looping processes used to yield to each other, each
// waiting for the other to take the lock, until their windows passed (a
// 51 ms p99 handoff in bench/, 2 processes).
func TestNoYieldOnceOthersHeld(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newFileLock(t, path)
	l.cfg.Handoff = time.Hour // a yield waits until ctx is done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	mine := l.Token()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	// Since then: a waiter announced itself, and another process held the
	// lock and released it (its record is the last).
	if err := os.WriteFile(path+wantSuffix, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := stale.Self(mine+1, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other.PID++ // not this process
	if err := os.WriteFile(path+".last", other.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	// If it yielded, only the context would end the wait.
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if err := l.Lock(short); err != nil || short.Err() != nil {
		t.Fatalf("Lock after another process held the lock since this one released it: %v, its context: %v; want it at once, not after a yield that lasts until the context ends", err, short.Err())
	}
	if got := l.Token(); got != mine+2 {
		t.Errorf("token %d, want %d (after the other's %d)", got, mine+2, mine+1)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// newFileLock is a lock file at path, as lockfile.New makes one.
func newFileLock(t *testing.T, path string, opts ...Option) *Lock {
	t.Helper()
	l, err := New(path, func(abs string) Store { return NewFileStore(abs) }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// newDirLock is a lock directory handle on path.
func newDirLock(t *testing.T, path string, opts ...Option) *Lock {
	t.Helper()
	l, err := New(path, func(abs string) Store { return NewDirStore(abs) }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A file of someone else's at P.want (a user's notes, a symlink) is not
// an announcement: a releaser that comes straight back neither waits for
// it nor removes it (P10). (It once unlinked whatever stood there.)
func TestWantNotOursLeftAlone(t *testing.T) {
	for _, c := range []struct {
		name  string
		plant func(want string) error
	}{
		{"DataFile", func(want string) error { return os.WriteFile(want, []byte("my notes\n"), 0o644) }},
		{"Symlink", func(want string) error {
			if runtime.GOOS == "windows" {
				return errors.New("Wine's symlinks are not reparse points")
			}
			return os.Symlink("elsewhere", want)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(testdir.New(t), "x.lock")
			want := path + wantSuffix
			if err := c.plant(want); err != nil {
				t.Skipf("cannot plant it here: %v", err)
			}
			before, _ := os.Lstat(want)
			l := newFileLock(t, path)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for range 3 {
				if err := l.Lock(ctx); err != nil {
					t.Fatal(err)
				}
				if err := l.Unlock(); err != nil {
					t.Fatal(err)
				}
			}
			after, err := os.Lstat(want)
			if err != nil || !os.SameFile(before, after) || after.Size() != before.Size() {
				t.Errorf("%s after a release and a quick return: %v, %v; want it untouched", want, after, err)
			}
		})
	}
}
