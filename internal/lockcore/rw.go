package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// Shared (reader) locks, for lock directories. docs/PROTOCOL.md, "Shared
// and exclusive", explains the protocol; the step names S1..S6 appear here.
//
// A directory P held in shared mode holds an anchor record "owner" (mode
// shared; its token is the last one issued in the group) and one record
// "r.<uuid>" per reader, each with its own heartbeat and token. Waiters
// queue in the directory P.queue, one record each, named "<seq>.<w|r>.<uuid>".
// Every change of the holder set — a reader joining or leaving, a group
// forming or dissolving, the lock handed to waiters — happens under the
// guard P.break, so these changes are serialised across hosts. An
// exclusive holder takes a free P with mkdir alone (no guard) when nobody
// queues, as package lockfile does.

const readerPrefix = "r."

type rwSupport struct {
	l     *Lock
	dir   *DirStore
	queue string

	// last watches an unreadable P.last for schedule, which runs under
	// the guard, so one goroutine at a time.
	last stale.Observation

	mu       sync.Mutex                    // guards queueObs, which waiters update outside the guard
	queueObs map[string]*stale.Observation // remote waiters' queue records
}

// rwIn is the shared-lock support at work in one guard section: its calls
// beside the lock, and into P and the queue, go through the section's
// directory o (withGuardIn; nil: by name), which on sshfs saves a lookup
// of the user's directory at each call. Its dir is rwSupport's store bound
// to o, and shadows it.
type rwIn struct {
	*rwSupport
	o   *opDir
	dir *DirStore
}

// in is rw working through o (nil: by name).
func (rw *rwSupport) in(o *opDir) rwIn { return rwIn{rw, o, rw.dir.bound(o)} }

// under runs fn holding the guard, waiting while it is busy (underGuard,
// for fns that have no use for the deadline: they do a few operations),
// and gives it rw at work in the section.
func (rw *rwSupport) under(ctx context.Context, ws *waitState, fn func(s rwIn) error) error {
	return rw.l.underGuardIn(ctx, ws, func(_ time.Time, o *opDir) error { return fn(rw.in(o)) })
}

func (rw *rwSupport) readerPath(uuid string) string {
	return filepath.Join(rw.dir.Path(), readerPrefix+uuid)
}

// readerNames lists the reader records in P (O(readers); only writers and
// the last reader to leave pay it). A directory holding anything the
// protocol does not make is not a lock (P10): an error matching ErrNotLock,
// and nothing in it is judged, repaired or removed.
func (rw *rwSupport) readerNames() ([]string, error) {
	names, err := listIn(nil, rw.dir.Path())
	if f := foreignNames(names); len(f) > 0 {
		return nil, notLockDir(rw.dir.Path(), f)
	}
	var rs []string
	for _, n := range names {
		if readerName(n) {
			rs = append(rs, n)
		}
	}
	return rs, err
}

// TryRLock takes a shared hold if it can be had now: P free or held in
// shared mode, and no writer queued. Otherwise it returns an error matching
// ErrLocked naming who is in the way.
func (l *Lock) TryRLock() error {
	if err := l.kind.sharedOK(); err != nil {
		return l.pathErr("rlock", err)
	}
	ctx, cancel := tryContext() // waits for others as TryLock does
	defer cancel()
	ws := l.tryState()
	defer l.triedWith(ws)
	defer ws.stop()
	for range 4 {
		h, blk, err := l.tryShared(ctx, ws)
		if err != nil && l.transient(err) {
			return l.pathErr("rlock", &LockedError{Cause: dotlock.Unreachable, Reason: err.Error()})
		}
		if err != nil {
			return l.pathErr("rlock", l.tryErr(ctx, err))
		}
		if h != nil {
			l.installShared(h)
			return nil
		}
		if blk != nil {
			return l.pathErr("rlock", blk)
		}
	}
	return l.pathErr("rlock", &LockedError{Cause: dotlock.Contended, Reason: "contended"})
}

// RLock waits for a shared hold, queueing behind waiting writers, until
// it holds or ctx is done (then it returns ctx.Err() unchanged).
func (l *Lock) RLock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.kind.sharedOK(); err != nil {
		return l.pathErr("rlock", err)
	}
	ws := l.newWaitState()
	defer ws.stop()
	for {
		woken := l.wake.channel()
		h, err := l.rlockOnce(ctx, ws)
		if err == nil {
			l.installShared(h)
			return nil
		}
		if ctx.Err() != nil || !l.lookAgain(ws, err) {
			return l.ctxOr(ctx, "rlock", err)
		}
		// P6: the client cannot reach its server for now; look again.
		if l.cfg.OnWait != nil {
			l.cfg.OnWait(&LockedError{Cause: dotlock.Unreachable, Reason: err.Error()})
		}
		if err := ws.pause(ctx, woken, false); err != nil {
			return err
		}
	}
}

// rlockOnce tries for a shared hold, then waits for one in line.
func (l *Lock) rlockOnce(ctx context.Context, ws *waitState) (*hold, error) {
	var blocked *LockedError
	for range 4 {
		h, blk, err := l.tryShared(ctx, ws)
		if err != nil || h != nil {
			return h, err
		}
		if blocked = blk; blk != nil {
			break // OnWait is told from the line or the queue
		}
	}
	return l.waitInLine(ctx, ws, false, blocked)
}

// tryShared makes one try at a shared hold, without queueing.
func (l *Lock) tryShared(ctx context.Context, ws *waitState) (*hold, *LockedError, error) {
	var h *hold
	var blk *LockedError
	err := l.rw.under(ctx, ws, func(s rwIn) error {
		var err error
		h, blk, err = s.join(ws)
		return err
	})
	if errors.Is(err, errNotShared) {
		// Held exclusively (or being written): judge the holder, break it if dead.
		blk, err = l.inspect(ctx, ws)
		return nil, blk, err
	}
	return h, blk, err
}

// RUnlock releases one shared hold of this handle: the newest (the one
// whose token Token reports). It waits as Unlock does (see Unlock), and
// always makes its change under the breaker guard.
func (l *Lock) RUnlock() error {
	l.mu.Lock()
	n := len(l.readers)
	if n == 0 {
		l.mu.Unlock()
		return l.pathErr("runlock", ErrNotHeld)
	}
	h := l.readers[n-1]
	l.readers = l.readers[:n-1]
	l.mu.Unlock()
	l.stopHeartbeat(h)
	err := l.release(h)
	l.wake.notify()
	if err != nil {
		return l.pathErr("runlock", err)
	}
	return nil
}

func (l *Lock) installShared(h *hold) {
	l.mu.Lock()
	l.readers = insertByToken(l.readers, h)
	l.mu.Unlock()
	l.startHeartbeat(h)
}

// Readers returns the records of the shared holders of a lock directory.
func (l *Lock) Readers() ([]stale.Owner, error) {
	if err := l.kind.sharedOK(); err != nil {
		return nil, l.pathErr("readers", err)
	}
	names, err := l.rw.readerNames()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, l.pathErr("readers", err)
	}
	var os []stale.Owner
	for _, n := range names {
		data, err := readIn(nil, l.rw.dir.Path(), n)
		if err != nil {
			continue
		}
		if o, err := stale.Parse(data); err == nil {
			os = append(os, o)
		}
	}
	return os, nil
}
