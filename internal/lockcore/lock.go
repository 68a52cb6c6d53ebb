// Package lockcore is the lock protocol shared by packages lockfile and
// lockdir: acquisition with backoff and wake-ups, the breaker guard, the
// heartbeat, fencing tokens and checked release, written once over the Store
// primitive. docs/PROTOCOL.md explains it; the step names there (A1..A6,
// B1..B5, H1..H3, R1..R3) appear in the comments here, and label the steps
// of its model, docs/model/dotlock.pml (which splits some: A1lost, B1w,
// B1v, B2, B4tmp; "model: X" below names them).
package lockcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// Lock is one handle on a lock path. It is safe for concurrent use: like a
// sync.Mutex, a goroutine calling Lock while another goroutine holds the
// handle waits.
type Lock struct {
	store Store
	guard *FileStore // the breaker guard, path + ".break"
	cfg   Config
	sync  bool
	wake  *wakePoint
	rw    *rwSupport // shared-mode support, for lock directories

	sem chan struct{} // held while this handle holds (or is acquiring) the lock

	mu      sync.Mutex
	hold    *hold
	readers []*hold // shared holds (lock directories only)
}

// hold is one successful acquisition.
type hold struct {
	owner    stale.Owner
	beatOff  int64
	entry    Entry
	lost     chan struct{}
	lostErr  error
	stop     chan struct{}
	done     chan struct{}
	lastBeat time.Time // when the last heartbeat that proved the hold was begun
	beat     uint64    // heartbeat counter (owner stays as acquired: others read it)

	// read returns the hold's record as it is on disk now; retire moves it
	// away if check approves. For an exclusive hold they are the store's;
	// a shared hold has its own record inside the lock directory.
	read   func() ([]byte, error)
	retire func(check func([]byte) bool) (bool, error)
	shared bool
}

// newHold makes a hold of the record rec (owner o) written through e.
func (l *Lock) newHold(o stale.Owner, e Entry, now time.Time) *hold {
	return &hold{
		owner:    o,
		beatOff:  o.HeartbeatOffset(),
		entry:    e,
		lost:     make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		lastBeat: now,
		read:     l.store.Read,
		retire:   func(check func([]byte) bool) (bool, error) { return l.store.Retire(true, check) },
	}
}

// New returns a handle for the lock at path kept in store. The path must
// name an entry in an existing directory.
func New(path string, newStore func(abs string) Store, opts ...Option) (*Lock, error) {
	if path == "" {
		return nil, &fs.PathError{Op: "new", Path: path, Err: errors.New("empty lock path")}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: err}
	}
	base := filepath.Base(abs)
	if base == "." || base == ".." || base == string(filepath.Separator) || strings.HasSuffix(path, string(filepath.Separator)) {
		return nil, &fs.PathError{Op: "new", Path: path, Err: errors.New("lock path must name a file or directory entry, not end in a separator")}
	}
	dir := filepath.Dir(abs)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: fmt.Errorf("directory %s: %w", dir, unwrapPath(err))}
	}
	if !st.IsDir() {
		return nil, &fs.PathError{Op: "new", Path: path, Err: fmt.Errorf("%s is not a directory", dir)}
	}
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.fill(); err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: err}
	}
	l := &Lock{
		store: newStore(abs),
		guard: NewFileStore(abs + ".break"),
		cfg:   cfg,
		wake:  wakePointFor(abs),
		sem:   make(chan struct{}, 1),
	}
	if ds, ok := l.store.(*DirStore); ok {
		l.rw = &rwSupport{l: l, dir: ds, queue: abs + ".queue"}
	}
	if cfg.Sync != nil {
		l.sync = *cfg.Sync
	} else {
		l.sync = networkFS(dir)
	}
	return l, nil
}

// Path returns the absolute lock path.
func (l *Lock) Path() string { return l.store.Path() }

// Config returns the handle's settings.
func (l *Lock) Config() Config { return l.cfg }

func (l *Lock) pathErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == l.store.Path() {
		return err
	}
	return &fs.PathError{Op: op, Path: l.store.Path(), Err: err}
}

// TryLock takes the lock if it can be had now: if it is free, or its holder
// is proven dead. Otherwise it returns an error matching ErrLocked that names
// the holder. A holder on another host is judged by its lease, which one
// call cannot watch; Lock can.
func (l *Lock) TryLock() error {
	select {
	case l.sem <- struct{}{}:
	default:
		return l.pathErr("lock", &LockedError{Owners: l.heldOwner(), Reason: "held through this handle"})
	}
	// The only wait is for a breaker guard, which is held briefly.
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StaleAfter+l.cfg.Grace)
	defer cancel()
	ws := l.newWaitState()
	var blocked *LockedError
	for range 4 {
		h, blk, err := l.attempt(ctx, ws)
		if err != nil {
			<-l.sem
			return l.pathErr("lock", err)
		}
		if h != nil {
			l.install(h)
			return nil
		}
		if blk != nil {
			blocked = blk
			break
		}
	}
	<-l.sem
	if blocked == nil {
		blocked = &LockedError{Reason: "contended"}
	}
	return l.pathErr("lock", blocked)
}

// Lock waits until it holds the lock or ctx is done, and then returns
// ctx.Err() unchanged.
func (l *Lock) Lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	ws := l.newWaitState()
	var last string
	for {
		woken := l.wake.channel()
		h, blk, err := l.attempt(ctx, ws)
		if err != nil {
			<-l.sem
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return ctx.Err()
			}
			return l.pathErr("lock", err)
		}
		if h != nil {
			l.install(h)
			return nil
		}
		if blk != nil && l.cfg.OnWait != nil {
			if s := blk.Error(); s != last {
				last = s
				l.cfg.OnWait(blk)
			}
		}
		if blk != nil && l.rw != nil {
			// A lock directory: wait in the queue, so that readers and
			// writers take turns (rw.go).
			h, err := l.waitQueued(ctx, ws, true)
			if err != nil {
				<-l.sem
				return l.ctxOr(ctx, "lock", err)
			}
			l.install(h)
			return nil
		}
		if err := ws.pause(ctx, woken, blk == nil); err != nil {
			<-l.sem
			return err
		}
	}
}

func (l *Lock) heldOwner() []stale.Owner {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return nil
	}
	return []stale.Owner{l.hold.owner}
}

// waitState is what one acquisition remembers between tries.
type waitState struct {
	l         *Lock
	holder    stale.Observation             // the record at the lock path, for leases and grace
	readerObs map[string]*stale.Observation // a shared group's reader records
	last      stale.Observation             // an unreadable last record
	guardObs  stale.Observation             // the breaker guard's record
	orphanObs stale.Observation             // the guard's record, when its holder lives here
	delay     time.Duration
	quick     int // tries in a row that were not blocked
}

func (l *Lock) newWaitState() *waitState { return &waitState{l: l} }

// pause waits before the next try: until woken by a release in this
// process, or a backoff with jitter passes, or ctx is done.
func (ws *waitState) pause(ctx context.Context, woken <-chan struct{}, retryNow bool) error {
	cfg := &ws.l.cfg
	if retryNow {
		ws.quick++
		if ws.quick < 3 {
			return ctx.Err()
		}
	}
	ws.quick = 0
	if ws.delay == 0 {
		ws.delay = cfg.PollMin
	} else {
		ws.delay = min(ws.delay*2, cfg.PollMax)
	}
	d := ws.delay/2 + rand.N(ws.delay/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-woken:
		ws.delay = 0
		return nil
	case <-t.C:
		return nil
	}
}

// attempt makes one try at the lock. It returns the hold if acquired, or
// who is in the way, or neither when the next try should follow at once
// (the path became free, or a stale lock was just removed).
func (l *Lock) attempt(ctx context.Context, ws *waitState) (*hold, *LockedError, error) {
	if l.rw != nil && l.rw.queued() {
		// Waiters queue: no barging past them. The queue's own turn-taking
		// (rw.go) serves this caller.
		if _, err := os.Lstat(l.store.Path()); errors.Is(err, fs.ErrNotExist) {
			l.rw.kick()
			return nil, &LockedError{Reason: "waiters are queued"}, nil
		}
		blk, err := l.inspect(ctx, ws) // name who holds it
		if err == nil && blk == nil {
			blk = &LockedError{Reason: "waiters are queued"}
		} else if blk != nil {
			blk.Reason += "; waiters are queued"
		}
		return nil, blk, err
	}
	// A1: create the entry.
	e, held, err := l.createExcl(l.store.Create, l.store.Path())
	if err == nil && !held && l.cfg.afterCreate != nil { // model: A1lost
		if herr := l.cfg.afterCreate(); herr != nil {
			e.Close() // the reply was "lost": we no longer know we created it
			e, err = nil, &fs.PathError{Op: "create", Path: l.store.Path(), Err: herr}
			held = l.maybeHeld(err)
		}
	}
	if err != nil && !held {
		return nil, nil, err
	}
	if held {
		// A2: someone (perhaps we, through a lost reply) has the path.
		blk, err := l.inspect(ctx, ws)
		return nil, blk, err
	}
	return l.complete(ctx, ws, e)
}

// createExcl runs an exclusive create and sorts its failures (P6): held
// (EEXIST, or an odd error while the path exists), or a real error. A
// network filesystem may report a lost race with EPERM after the winner has
// already removed the entry again (sshfs did so in a quarter of such
// races): then the create is tried again, a few times.
func (l *Lock) createExcl(create func(fs.FileMode) (Entry, error), path string) (Entry, bool, error) {
	for try := 0; ; try++ {
		e, err := create(fs.FileMode(l.cfg.Perm))
		switch {
		case err == nil:
			return e, false, nil
		case errors.Is(err, fs.ErrExist):
			return nil, true, err
		case !contendedErrno(err) || try == 3:
			return nil, false, err
		}
		if _, lerr := os.Lstat(path); lerr == nil {
			return nil, true, err
		}
	}
}

// maybeHeld reports whether a failed create may mean that the path is
// taken: EEXIST, or an error a network filesystem gives instead (P6).
func (l *Lock) maybeHeld(err error) bool {
	if errors.Is(err, fs.ErrExist) {
		return true
	}
	if !contendedErrno(err) {
		return false
	}
	_, lerr := os.Lstat(l.store.Path())
	return lerr == nil
}

// complete turns a created entry into a hold (A3..A6).
func (l *Lock) complete(ctx context.Context, ws *waitState, e Entry) (*hold, *LockedError, error) {
	now := l.cfg.Clock.Now()
	// A3: the token follows the last hold that left the path, which the
	// path's departures (release or break) publish atomically as they free it.
	last, err := l.lastToken(l.store, &ws.last)
	if err != nil {
		// Never a smaller token: give the entry up and come back.
		e.Close()
		l.abandon(nil)
		return nil, &LockedError{Reason: err.Error()}, nil
	}
	token := last + 1
	owner, err := stale.Self(token, l.cfg.Mode, now)
	if err != nil {
		e.Close()
		l.abandon(nil)
		return nil, nil, err
	}
	rec := owner.Marshal()
	// A4: write the record; on a network filesystem, make it visible.
	if _, err := e.WriteAt(rec, 0); err == nil && l.sync {
		err = e.Sync()
		if err != nil {
			e.Close()
			l.abandon(rec)
			return nil, nil, &fs.PathError{Op: "sync", Path: l.store.Path(), Err: unwrapPath(err)}
		}
	} else if err != nil {
		e.Close()
		l.abandon(rec)
		return nil, nil, &fs.PathError{Op: "write", Path: l.store.Path(), Err: unwrapPath(err)}
	}
	// A5: a breaker that saw our entry before the record was written may be
	// at work; decide nothing until no guard is held.
	if err := l.waitGuardClear(ctx, ws); err != nil {
		e.Close()
		l.abandon(rec)
		return nil, nil, err
	}
	// A6: verify that the entry at the path is ours.
	data, err := l.store.Read()
	if err == nil && bytes.Equal(data, rec) {
		return l.newHold(owner, e, now), nil, nil
	}
	e.Close()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	return nil, nil, nil // displaced while undecided; try again
}

// lastToken is the token of the last hold that left the store's path: 0 if
// none ever did. A last record that exists but cannot be read or parsed
// (cut short by a stale attribute cache, say) is an error, never a reason
// to start tokens again — until it has stayed the same for the grace
// period (ob, by our clock): then it is taken to be planted garbage,
// ignored, and replaced at the next release. So is anything that is not a
// record file at all (a symlink, a FIFO): dotlock never makes one.
func (l *Lock) lastToken(s Store, ob *stale.Observation) (uint64, error) {
	last, err := s.ReadLast()
	var nr ErrNotRecord
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.As(err, &nr):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("last record unreadable: %w", err)
	}
	o, err := stale.Parse(last)
	if err != nil {
		if ob.See(string(last), l.cfg.Clock.Now()) >= l.cfg.Grace {
			return 0, nil
		}
		return 0, fmt.Errorf("last record unreadable (%v)", err)
	}
	return o.Token, nil
}

// abandon removes an entry this attempt created but will not hold: empty
// (rec == nil) or carrying rec. Anything else at the path is left alone.
func (l *Lock) abandon(rec []byte) {
	l.store.Retire(false, func(moved []byte) bool {
		return len(moved) == 0 || bytes.Equal(moved, rec)
	})
}

// inspect reads the record at the path and decides: held by the living
// (who is returned), being written (within grace), or stale — then broken.
func (l *Lock) inspect(ctx context.Context, ws *waitState) (*LockedError, error) {
	data, err := l.store.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if l.rw != nil {
		if o, err := stale.Parse(data); err == nil && o.Mode == stale.ModeShared {
			return l.rw.inspectGroup(ctx, ws)
		}
		if len(data) == 0 {
			if repaired, err := l.rw.repairAnchor(ctx, ws); repaired || err != nil {
				return nil, err
			}
		}
	}
	victim, reason, blk := l.judge(&ws.holder, data, l.cfg.Grace, l.cfg.StaleAfter)
	if blk != nil {
		return blk, nil
	}
	return nil, l.breakStale(ctx, ws, data, victim, reason)
}

// judge decides about a record seen at a path. It returns who blocks, or
// (blk == nil) why the record is stale, with its parsed owner if it has one.
func (l *Lock) judge(ob *stale.Observation, data []byte, grace, lease time.Duration) (*stale.Owner, string, *LockedError) {
	now := l.cfg.Clock.Now()
	o, perr := stale.Parse(data)
	if perr != nil {
		var re *stale.RecordError
		if errors.As(perr, &re) && o.Version > stale.FormatVersion {
			// A newer dotlock's record we cannot judge: never break it.
			return nil, "", &LockedError{Reason: perr.Error() + "; held by a newer dotlock? not judged"}
		}
		// P5: empty, partial or corrupt: being written, until it has stayed
		// the same for the grace period by our own clock.
		if age := ob.See(string(data), now); age < grace {
			return nil, "", &LockedError{Reason: "record being written (" + perr.Error() + ")"}
		} else {
			return nil, fmt.Sprintf("%v, unchanged for %v", perr, age.Round(time.Millisecond)), nil
		}
	}
	j := l.cfg.Checker.Judge(o)
	switch j.Verdict {
	case stale.Dead:
		return &o, j.Reason, nil
	case stale.Remote:
		// P9: a lease, judged by whether the heartbeat changed while we
		// watched, never by comparing its timestamp with our clock.
		if age := ob.See(string(data), now); age >= lease {
			return &o, fmt.Sprintf("%s; heartbeat unchanged for %v (lease %v)", j.Reason, age.Round(time.Millisecond), lease), nil
		}
		return nil, "", &LockedError{Owners: []stale.Owner{o}, Reason: j.Reason + ", heartbeat within lease"}
	}
	ob.Reset()
	return nil, "", &LockedError{Owners: []stale.Owner{o}, Reason: j.Reason}
}

// breakStale removes the stale record victimData from the lock path (B1..B5).
func (l *Lock) breakStale(ctx context.Context, ws *waitState, victimData []byte, victim *stale.Owner, reason string) error {
	err := l.withGuard(ctx, ws, func(deadline time.Time) error {
		// B3: re-verify under the guard that the path still holds exactly
		// what was judged stale.
		cur, err := l.store.Read()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, victimData) || l.cfg.Clock.Now().After(deadline) {
			return nil
		}
		// B4: move the record aside atomically and check what was moved;
		// a valid record goes to the last-record slot, keeping its token.
		ok, err := l.store.Retire(victim != nil, func(moved []byte) bool {
			return bytes.Equal(moved, victimData)
		})
		if err != nil {
			return &BreakError{Owner: victim, Reason: reason, Err: unwrapPath(err)}
		}
		if ok && l.cfg.OnBreak != nil {
			l.cfg.OnBreak(victim, reason)
		}
		if ok && l.rw != nil {
			return l.rw.schedule() // hand the freed lock to the queue
		}
		return nil
	})
	var be *BreakError
	switch {
	case err == nil, errors.Is(err, errGuardBusy):
		return nil
	case errors.As(err, &be):
		return err
	}
	// No guard for us (no permission to create it, say): say whose lock
	// could not be broken, and why it had to be.
	return &BreakError{Owner: victim, Reason: reason, Err: err}
}

var errGuardBusy = errors.New("breaker guard busy")

// withGuard runs fn while holding the breaker guard (B1, B2, B5). fn must
// not act after deadline: a guard held for longer may have been broken as
// stale by another host. It returns errGuardBusy if the guard is held by
// someone alive.
func (l *Lock) withGuard(ctx context.Context, ws *waitState, fn func(deadline time.Time) error) error {
	e, held, err := l.createExcl(l.guard.Create, l.guard.Path())
	if err != nil {
		if !held {
			return err // no permission to create the guard, or worse
		}
		if _, err := l.guardStale(ws); err != nil {
			return err
		}
		return errGuardBusy // held, or just broken: the caller comes round again
	}
	now := l.cfg.Clock.Now()
	o, err := stale.Self(0, stale.ModeBreaker, now)
	if err != nil {
		e.Close()
		os.Remove(l.guard.Path())
		return err
	}
	rec := o.Marshal()
	_, werr := e.WriteAt(rec, 0) // model: B1w
	if werr == nil && l.sync {
		werr = e.Sync()
	}
	e.Close()
	// B5: release the guard only if it is still ours.
	defer l.guard.Retire(false, func(moved []byte) bool { return bytes.Equal(moved, rec) })
	if werr != nil {
		return &fs.PathError{Op: "write", Path: l.guard.Path(), Err: unwrapPath(werr)}
	}
	// B1 (model: B1v): verify, as A6 does for the lock. A breaker paused
	// between creating the guard and writing it for longer than the grace
	// period finds its empty guard broken (P5), and may not act under it.
	if cur, err := l.guard.Read(); err != nil || !bytes.Equal(cur, rec) {
		return errGuardBusy
	}
	return fn(now.Add(l.guardLease() / 2))
}

// guardLease is how long a remote breaker's guard stays unchanged before it
// counts as abandoned: longer than a holder's lease, since a breaker must not
// lose the guard while it works (it acts only within half of this), and a
// guard is left behind only by a breaker that died during a break.
func (l *Lock) guardLease() time.Duration { return 4 * l.cfg.StaleAfter }

// guardStale (model: B2) judges the guard's holder and breaks the guard if
// it is stale, by the same rules as a lock's holder. Guard holders do not
// heartbeat: a guard unchanged for the guard's lease is stale, unless its
// holder is proven dead sooner.
func (l *Lock) guardStale(ws *waitState) (bool, error) {
	data, err := l.guard.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if _, _, blk := l.judge(&ws.guardObs, data, l.cfg.Grace, l.guardLease()); blk != nil && !l.orphanGuard(ws, data) {
		return false, nil
	}
	ok, err := l.guard.Retire(false, func(moved []byte) bool { return bytes.Equal(moved, data) })
	if err != nil {
		return false, &BreakError{Reason: "stale breaker guard " + l.guard.Path(), Err: unwrapPath(err)}
	}
	return ok, nil
}

// orphanGuard reports whether a guard whose holder runs on this host has
// stayed unchanged for the guard's lease. No live breaker relies on its
// guard for longer than half of that (B3, H2, R2 check their deadline), so
// it is an orphan: a breaker that gave up its guard at B1's verify while
// another breaker, judging the guard empty, moved it aside and then put it
// back. Without this, processes on the holder's host would wait for it as
// long as the holder runs (found by the model: docs/model).
func (l *Lock) orphanGuard(ws *waitState, data []byte) bool {
	o, err := stale.Parse(data)
	if err != nil || l.cfg.Checker.Judge(o).Verdict != stale.Alive {
		ws.orphanObs.Reset()
		return false
	}
	return ws.orphanObs.See(string(data), l.cfg.Clock.Now()) >= l.guardLease()
}

// waitGuardClear returns once no breaker guard exists (A5).
func (l *Lock) waitGuardClear(ctx context.Context, ws *waitState) error {
	var gw waitState
	gw.l = l
	for {
		if _, err := os.Lstat(l.guard.Path()); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if stale, err := l.guardStale(ws); err != nil {
			return err
		} else if stale {
			continue
		}
		if err := gw.pause(ctx, nil, false); err != nil {
			return err
		}
	}
}

// install makes h the handle's hold and starts its heartbeat.
func (l *Lock) install(h *hold) {
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	go l.heartbeat(h)
}

// heartbeat rewrites h's heartbeat until stopped or lost (H1..H3).
func (l *Lock) heartbeat(h *hold) {
	defer close(h.done)
	t := time.NewTicker(l.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if err := l.beat(h); err != nil {
			h.lostErr = err
			close(h.lost)
			return
		}
	}
}

// lapsed reports whether h went so long without a heartbeat that another
// host may have judged its lease lapsed and be breaking it right now.
func (l *Lock) lapsed(h *hold, now time.Time) bool {
	return now.Sub(h.lastBeat) > l.cfg.StaleAfter/2
}

// beat proves h still holds the path and advances its heartbeat. It returns
// an error only when the hold is lost; transient errors wait for the next
// beat (and, if they last, make the hold lapse).
func (l *Lock) beat(h *hold) error {
	now := l.cfg.Clock.Now()
	prove := func(deadline time.Time) error {
		// H1: is the record at the path still ours?
		data, err := h.read()
		if errors.Is(err, fs.ErrNotExist) {
			return &LostError{Reason: "the lock was removed"}
		}
		if err != nil {
			return nil // transient; retried next beat
		}
		o, perr := stale.Parse(data)
		if perr != nil || o.UUID != h.owner.UUID {
			return lostTo(o, perr)
		}
		// H2: write the next heartbeat in place, through our own entry.
		h.beat++
		next := h.owner
		next.Beat, next.BeatTime = h.beat, now
		if _, err := h.entry.WriteAt(next.HeartbeatLine(), h.beatOff); err != nil {
			return nil
		}
		if l.sync {
			if err := h.entry.Sync(); err != nil {
				return nil
			}
		}
		// The proof counts only if it ended by its deadline: a read or
		// write that stalled past it may have raced a breaker that judged
		// the lease lapsed meanwhile, and the write landed in the record
		// it moved away (model: H2). The next beat runs under the guard.
		if l.cfg.Clock.Now().After(deadline) {
			return nil
		}
		h.lastBeat = now
		return nil
	}
	if !l.lapsed(h, now) {
		return prove(h.lastBeat.Add(l.cfg.StaleAfter / 2))
	}
	// H3: after a lapse, prove the hold under the breaker guard, so that
	// no breaker that judged the lease lapsed is still at work.
	err := l.withGuard(context.Background(), l.newWaitState(), prove)
	if errors.Is(err, errGuardBusy) {
		return nil
	}
	return err
}

func lostTo(o stale.Owner, perr error) error {
	if perr != nil {
		return &LostError{Reason: "the record at the path is no longer ours (" + perr.Error() + ")"}
	}
	return &LostError{Reason: "the lock is now held by " + o.String()}
}

// Unlock releases the lock. It returns an error matching ErrNotHeld if the
// handle does not hold it, and one matching ErrLost if the record at the
// path is no longer this hold's (the lock stays with its new holder).
func (l *Lock) Unlock() error {
	l.mu.Lock()
	h := l.hold
	l.hold = nil
	l.mu.Unlock()
	if h == nil {
		return l.pathErr("unlock", ErrNotHeld)
	}
	close(h.stop)
	<-h.done
	err := l.release(h)
	<-l.sem
	l.wake.notify()
	if err != nil {
		return l.pathErr("unlock", err)
	}
	return nil
}

// release is the checked release (R1..R3).
func (l *Lock) release(h *hold) error {
	h.entry.Close() // before moving it: Windows cannot rename an open file
	select {
	case <-h.lost:
		return h.lostErr
	default:
	}
	mine := func(moved []byte) bool {
		o, err := stale.Parse(moved)
		return err == nil && o.UUID == h.owner.UUID
	}
	do := func(deadline time.Time) error {
		// R1: the record at the path must be ours.
		data, err := h.read()
		if errors.Is(err, fs.ErrNotExist) {
			return &LostError{Reason: "the lock was removed"}
		}
		if err != nil {
			return err
		}
		if !mine(data) {
			o, perr := stale.Parse(data)
			return lostTo(o, perr)
		}
		// Act only by the deadline: a pause after the lapse check (or in
		// R1's read) may have let a breaker judge the lease lapsed, and
		// retiring then could move a successor's record, or lose the token
		// the breaker just published (model: R1). Come round under the guard.
		if l.cfg.Clock.Now().After(deadline) {
			return errGuardBusy
		}
		// R2: move it to the last-record slot (publishing the token and
		// freeing the path in one step). R1 just proved the record ours,
		// and only a breaker holding the guard could take it away — which
		// needs a lapse, and a lapsed release holds the guard itself.
		ok, err := h.retire(nil)
		if err != nil {
			return err
		}
		if !ok {
			return &LostError{Reason: "the lock changed hands while being released"}
		}
		if h.shared {
			return l.rw.readerLeft()
		}
		return nil
	}
	now := l.cfg.Clock.Now()
	if !h.shared && !l.lapsed(h, now) {
		err := do(h.lastBeat.Add(l.cfg.StaleAfter / 2))
		if !errors.Is(err, errGuardBusy) {
			if err == nil && l.rw != nil {
				l.rw.kick()
			}
			return err
		}
	}
	// R3: after a lapse, and always for a shared hold (a change of the
	// holder set), release under the guard.
	ws := l.newWaitState()
	for {
		err := l.withGuard(context.Background(), ws, do)
		if !errors.Is(err, errGuardBusy) {
			if err == nil && !h.shared && l.rw != nil {
				l.rw.kick()
			}
			return err
		}
		if err := ws.pause(context.Background(), nil, false); err != nil {
			return err
		}
	}
}

// current is the exclusive hold, or else the newest shared hold, or nil.
// Called with l.mu held.
func (l *Lock) current() *hold {
	if l.hold != nil {
		return l.hold
	}
	if n := len(l.readers); n > 0 {
		return l.readers[n-1]
	}
	return nil
}

// Token returns the fencing token of the current hold (exclusive, or else
// the newest shared one), or 0.
func (l *Lock) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.owner.Token
	}
	return 0
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Lost returns a channel that is closed when the current hold is found
// lost. When the handle holds nothing, the channel is already closed.
func (l *Lock) Lost() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.lost
	}
	return closedChan
}

// Held returns the record of the current hold, if any.
func (l *Lock) Held() (stale.Owner, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return stale.Owner{}, false
	}
	return l.hold.owner, true
}

// Owner returns the record of whoever holds the path now. With no holder
// it fails with an error matching fs.ErrNotExist; with a record that
// cannot be read, one wrapping *stale.RecordError.
func (l *Lock) Owner() (stale.Owner, error) {
	data, err := l.store.Read()
	if err != nil {
		return stale.Owner{}, l.pathErr("owner", err)
	}
	o, err := stale.Parse(data)
	if err != nil {
		return o, l.pathErr("owner", err)
	}
	return o, nil
}

// Judge returns the checker's verdict on the record at the path now.
func (l *Lock) Judge(o stale.Owner) stale.Judgement { return l.cfg.Checker.Judge(o) }
