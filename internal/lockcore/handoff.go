package lockcore

import (
	"context"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// wantSuffix names P.want, where waiters for a lock file announce that they
// wait (see yield). It is a hint, never part of the lock's state.
const wantSuffix = ".want"

// announce makes sure P.want exists while this waiter waits (W4).
func (ws *waitState) announce() {
	l := ws.l
	f, err := openFile(l.store.Path()+wantSuffix, os.O_WRONLY|os.O_CREATE|oNoFollow|oNonblock, fs.FileMode(l.cfg.Perm))
	if err == nil {
		f.Close()
	}
}

// handoffWindow is how long a releaser that comes straight back waits for
// an announced waiter to take the lock.
func (l *Lock) handoffWindow() time.Duration {
	if l.cfg.Handoff > 0 {
		return l.cfg.Handoff
	}
	return min(max(l.cfg.PollMax, 2*time.Millisecond), 50*time.Millisecond)
}

// yield lets waiters have a lock this process released a moment ago (W4). A
// releaser that comes straight back would otherwise win nearly every
// time, while waiters elsewhere are still waking up (a barging releaser
// starves them). If P.want says someone waits, and no one has held the
// lock since this process released it, it waits until the path changes or
// the handoff window passes. (Once someone else has held it, the handoff
// has happened; waiting then would be waiting for another releaser doing
// the same: two looping processes each yielding to the other until their
// windows passed.)
//
// Waiters never remove P.want, not even once served: others may have
// announced themselves there too, and would not learn that their
// announcement was gone until the next release, when it is too late (a
// futex's "maybe waiters" state is kept by the thread it wakes, for the
// same reason). So a window that passes with no taker is what finds it
// stale: it is removed at once, before this caller tries, so that a waiter
// still there, woken by that try, announces itself again after it.
func (l *Lock) yield(ctx context.Context) {
	window := l.handoffWindow()
	mine, ok := l.wake.releasedWithin(window, l.cfg.Clock.Now())
	if !ok {
		return
	}
	want := l.store.Path() + wantSuffix
	if !emptyFile(want) {
		return // none; or not dotlock's: never removed (P10)
	}
	if last, err := l.lastToken(l.store, &stale.Observation{}); err == nil && last != mine {
		return // held by someone else since
	}
	woken := l.wake.channel()
	stop := watchPath(l.store.Path(), l.wake)
	defer stop()
	if _, err := os.Lstat(l.store.Path()); err == nil {
		return // taken already
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-woken:
	case <-ctx.Done():
	case <-t.C:
		if emptyFile(want) {
			syscall.Unlink(want) // a file only: never a planted directory
		}
	}
}
