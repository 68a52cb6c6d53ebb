package lockcore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// lineUsers is the number of waiters in path's lines, -1 if it has none.
func lineUsers(path string) int {
	lines.Lock()
	defer lines.Unlock()
	n := -1
	for _, writer := range []bool{true, false} {
		if ln := lines.m[lineKey(path, writer)]; ln != nil {
			n = max(n, 0) + ln.users
		}
	}
	return n
}

// TestLineCancel: waiters in a process's line whose contexts end leave it
// cleanly, heads and followers alike; the others are all served, one at a
// time, and the line is gone once the last of them leaves.
func TestLineCancel(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	holder := newDirLock(t, path)
	if err := holder.TryLock(); err != nil {
		t.Fatal(err)
	}
	const n = 60
	var holders atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	gaveUp := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := newDirLock(t, path)
			d := 30 * time.Second
			if i%2 == 0 {
				d = time.Duration(i%10) * time.Millisecond // gives up before the holder leaves
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			var err error
			if i%3 == 0 {
				err = l.RLock(ctx)
			} else {
				err = l.Lock(ctx)
			}
			if i%2 == 0 {
				if !errors.Is(err, context.DeadlineExceeded) {
					errs <- err
				}
				if err == nil {
					l.Unlock()
				}
				gaveUp <- struct{}{}
				return
			}
			if err != nil {
				errs <- err
				return
			}
			if h := holders.Add(1); h > 1 && i%3 != 0 {
				errs <- errors.New("a writer held beside another holder")
			}
			time.Sleep(time.Millisecond)
			holders.Add(-1)
			if i%3 == 0 {
				err = l.RUnlock()
			} else {
				err = l.Unlock()
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	for range n / 2 {
		<-gaveUp
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if u := lineUsers(holder.Path()); u != -1 {
		t.Errorf("the line outlived its waiters (%d users)", u)
	}
	if _, err := os.Lstat(path + ".queue"); err == nil {
		t.Errorf("queue left behind")
	}
}

// TestLineFollowerToldOnWait: a waiter behind another in its process's
// line is told who holds the lock, as one in the queue is.
func TestLineFollowerToldOnWait(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	holder := newDirLock(t, path)
	if err := holder.TryLock(); err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	head := newDirLock(t, path)
	res := make(chan error, 2)
	go func() { res <- head.Lock(ctx) }()
	for lineUsers(holder.Path()) != 1 {
		time.Sleep(time.Millisecond) // polling a real event
	}
	told := make(chan *LockedError, 1)
	follower := newDirLock(t, path, WithOnWait(func(e *LockedError) {
		select {
		case told <- e:
		default:
		}
	}))
	go func() { res <- follower.Lock(ctx) }()
	select {
	case e := <-told:
		if len(e.Owners) != 1 || e.Owners[0].UUID != holder.hold.owner.UUID {
			t.Errorf("follower told of %v, want the holder", e)
		}
	case err := <-res:
		t.Fatalf("Lock returned %v while another handle holds", err)
	case <-time.After(10 * time.Second):
		t.Fatal("follower never told who is in the way")
	}
	cancel()
	for range 2 {
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter: %v", err)
		}
	}
}
