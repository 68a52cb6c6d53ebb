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
// windows passed.) Unless a long waiter on another host marked P.want
// since that hold (W7): then it gives way all the same. On a network
// filesystem it also looks at P every probeMax while it waits, for a
// taker on another host, whom inotify does not see.
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
	net := l.netWaits()
	if last, err := l.lastToken(l.store, &stale.Observation{}); err == nil && last != mine && !(net && l.markedAfterLast()) {
		return // held by someone else since, and no one waits long (W7)
	}
	if !l.giveWay(ctx, window, net, true) && ctx.Err() == nil && emptyFile(want) {
		syscall.Unlink(want) // a file only: never a planted directory
	}
}

// markedAfterLast reports whether P.want was marked since the last hold
// that left wrote its record (W7).
func (l *Lock) markedAfterLast() bool {
	last, err := os.Lstat(lastSlot(l.store.Path(), 0)) // its own, just read
	if err != nil {
		return false
	}
	after, _, _ := l.wantMark(last.ModTime())
	return after
}

// giveWay waits until the lock is taken or window passes, and reports
// whether it saw it taken: until its path appears, or (anyChange) changes
// at all. inotify sees this host's changes; on a network filesystem (poll)
// another host's taker is seen by looking every probeMax.
func (l *Lock) giveWay(ctx context.Context, window time.Duration, poll, anyChange bool) bool {
	woken := l.wake.channel()
	stop := watchPath(l.store.Path(), l.wake)
	defer stop()
	end := time.NewTimer(window)
	defer end.Stop()
	var tick <-chan time.Time
	if poll {
		t := time.NewTicker(probeMax)
		defer t.Stop()
		tick = t.C
	}
	for {
		if _, err := os.Lstat(l.store.Path()); err == nil {
			return true
		}
		select {
		case <-woken:
			if anyChange {
				return true
			}
			woken = l.wake.channel() // the release's own events, say
		case <-ctx.Done():
			return false
		case <-end.C:
			return false
		case <-tick:
		}
	}
}

// Turns across hosts (W7). On a network filesystem a release wakes this
// host's waiters at once (inotify), while another host's learn of it only
// by probing: the lock went round one host's processes, and the other's
// rarely got in (fairness 0.19 on two sshfs mounts). So a waiter that has
// waited longWait handoff windows marks P.want (sets its times to now)
// every half window while it waits; and a waiter that has not waited that
// long, woken by a release here, or a releaser coming back, gives way when
// P.want was marked after the record that held the lock was written (on
// NFS both times are the server's; an SMB client sends its own clock's).
// A mark, as P.want itself, only orders who tries first.

// longWait is how many handoff windows a long waiter has waited: about
// that long may a host's own handoffs go on before another host's waiter
// gets a turn, a trade between fairness and the handoffs a prompt local
// wake-up allows.
const longWait = 4

// markLong marks P.want if this waiter has waited long (W7).
func (ws *waitState) markLong() {
	n := ws.net
	if n == nil {
		return
	}
	now := time.Now()
	if !ws.waitedLong() || now.Sub(n.marked) < max(probeMax, ws.l.handoffWindow()/2) {
		return
	}
	n.marked = now
	if touchNow(ws.l.store.Path()+wantSuffix) == syscall.ENOENT {
		ws.announce()
	}
}

// waitedLong reports whether this waiter marks P.want (W7).
func (ws *waitState) waitedLong() bool {
	n := ws.net
	return n != nil && time.Since(n.since) >= longWait*ws.l.handoffWindow()
}

// wantMark compares P.want's time with ref, the time of a record that
// held the lock (W7): after is a mark since that record was written;
// sameSecond, the same whole second where times are whole seconds (sshfs:
// SFTP's), which may be a mark just after; at is P.want's time.
func (l *Lock) wantMark(ref time.Time) (after, sameSecond bool, at time.Time) {
	if ref.IsZero() {
		return false, false, time.Time{}
	}
	// Through an open: a stat may be answered from the client's attribute
	// cache (an SMB client's for a second, or as long as it holds a
	// lease), where an open asks the server.
	f, err := openFile(l.store.Path()+wantSuffix, os.O_RDONLY|oNoFollow|oNonblock, 0)
	if err != nil {
		return false, false, time.Time{}
	}
	w, err := f.Stat()
	f.Close()
	if err != nil || !w.Mode().IsRegular() {
		return false, false, time.Time{}
	}
	at = w.ModTime()
	return at.After(ref), at.Nanosecond() == 0 && at.Equal(ref), at
}

// heldAt is the time of the record at P, which a whole look found held.
// A waiter compares marks with it rather than with P.last's: a lookup of
// P.last before any hold left (none yet) would leave a cached "no such
// file" behind (an SMB client trusts one for a second), and the waiter's
// A3 could then read no last record and start tokens again (seen between
// the VMs, P7).
func (l *Lock) heldAt() time.Time {
	if st, err := os.Lstat(l.store.Path()); err == nil {
		return st.ModTime()
	}
	return time.Time{}
}

// longWaiterMarked reports whether a waiter finds a long waiter's mark
// (W7). It gives way once to each mark: a live long waiter marks again
// (a new time), while a stale mark — or one in the same whole second as
// the last record, or one made by a client whose clock is ahead — then
// costs each waiter one give-way at most.
func (ws *waitState) longWaiterMarked(use bool) bool {
	n := ws.net
	after, same, at := ws.l.wantMark(n.heldAt)
	if !after && !same || at.Equal(n.gaveWay) {
		return false
	}
	if use {
		n.gaveWay = at
	}
	return true
}

// giveWayToLong is W7 for a waiter that has not waited long itself. Woken
// by a change here (a release on this host, seen at once), it lets a long
// waiter elsewhere have the free lock first. Between its whole looks it
// does not probe while the last look found a long waiter's mark: the long
// waiter probes, and a probe here could take the lock the moment it is
// freed. It reports whether this try was skipped so: held, as last seen.
func (ws *waitState) giveWayToLong(ctx context.Context) (skipped bool) {
	n := ws.net
	if n == nil || ws.waitedLong() {
		return false
	}
	if !n.woke {
		return n.longAhead && ws.probeOK()
	}
	l := ws.l
	if _, err := os.Lstat(l.store.Path()); err == nil || !ws.longWaiterMarked(true) {
		return false // held (the try finds out by whom), or no long waiter
	}
	// A long waiter probes every probeMax: one that has not taken the
	// lock by then is gone.
	l.giveWay(ctx, min(l.handoffWindow(), 2*probeMax), true, false)
	return false
}
