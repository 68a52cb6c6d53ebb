// Package lockcore is the lock protocol shared by packages lockfile and
// lockdir: acquisition with backoff and wake-ups, the breaker guard, the
// heartbeat, fencing tokens and checked release, written once over the Store
// primitive. docs/PROTOCOL.md explains it; the step names there (A1..A6,
// B1..B5, H1..H3, R1..R3, W1..W5) appear in the comments here, and label
// the steps of its model, docs/model/dotlock.pml (which splits some: A1lost,
// B1w, B1v, B2, B4tmp; "model: X" below names them).
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
	"syscall"
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
	local bool // a local filesystem: entries are recognised by inode
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
	beatMu   sync.Mutex  // held by a beat, and by stopHeartbeat
	timer    *time.Timer // the next beat
	stopped  bool
	lastBeat time.Time // when the last heartbeat that proved the hold was begun
	beat     uint64    // heartbeat counter (owner stays as acquired: others read it)

	// read returns the hold's record as it is on disk now; retire moves it
	// away if check approves. For an exclusive hold they are the store's;
	// a shared hold has its own record inside the lock directory.
	read   func() ([]byte, error)
	retire func(check func([]byte) bool) (bool, error)
	shared bool

	id      fileID // the entry's inode, pinned while it is open
	idKnown bool   // id is set: a local filesystem, an exclusive hold
}

// newHold makes a hold of the record rec (owner o) written through e.
func (l *Lock) newHold(o stale.Owner, e Entry, now time.Time) *hold {
	return &hold{
		owner:    o,
		beatOff:  o.HeartbeatOffset(),
		entry:    e,
		lost:     make(chan struct{}),
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
	if err := checkNames(dir, base); err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: err}
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
		guard: NewFileStore(abs + guardSuffix),
		cfg:   cfg,
		wake:  wakePointFor(abs),
		sem:   make(chan struct{}, 1),
	}
	if ds, ok := l.store.(*DirStore); ok {
		l.rw = &rwSupport{l: l, dir: ds, queue: abs + ".queue"}
	}
	l.local = localFS(dir)
	if cfg.Sync != nil {
		l.sync = *cfg.Sync
	} else {
		l.sync = networkFS(dir)
	}
	return l, nil
}

// Path returns the absolute lock path.
func (l *Lock) Path() string { return l.store.Path() }

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
// call cannot watch; Lock can. It waits for others at most tryWait (1 s)
// in all: for a breaker guard held by someone else (a break or handoff
// under way, or a guard left behind; then the error matches ErrLocked and
// names the guard), and for the cleanup of an attempt that failed (ENOSPC,
// say), which goes on in the background. Its own filesystem operations
// take what they take.
func (l *Lock) TryLock() error {
	select {
	case l.sem <- struct{}{}:
	default:
		return l.pathErr("lock", &LockedError{Owners: l.heldOwner(), Reason: "held through this handle"})
	}
	// The only wait is for a breaker guard, which is held briefly.
	ctx, cancel := tryContext()
	defer cancel()
	ws := l.newWaitState()
	ws.try = true
	var blocked *LockedError
	for range 4 {
		h, blk, err := l.attempt(ctx, ws)
		if err != nil {
			<-l.sem
			return l.pathErr("lock", l.tryErr(ctx, err))
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
	defer ws.stop()
	if l.rw == nil {
		l.yield(ctx)
	}
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
		if blk != nil && l.rw != nil {
			// A lock directory: wait in the process's line (line.go),
			// then in the queue, so that readers and writers take turns
			// (rw.go). OnWait is told from the line or the queue.
			h, err := l.waitInLine(ctx, ws, true, blk)
			if err != nil {
				<-l.sem
				return l.ctxOr(ctx, "lock", err)
			}
			l.install(h)
			return nil
		}
		if blk != nil {
			// Announced before the look that OnWait reports: a releaser
			// that comes back after it lets this waiter in (W4), so the
			// hold named is the last one ahead of it.
			ws.announce()
			if ws.follow(blk) {
				continue
			}
			if s := blk.Error(); s != last && l.cfg.OnWait != nil {
				last = s
				l.cfg.OnWait(blk)
			}
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
	gdelay    time.Duration // the same, waiting for a breaker guard
	quick     int           // tries in a row that were not blocked
	try       bool          // TryLock: cleanups are waited for briefly (tryCleanup)

	// Wake-ups other than polling (notify_linux.go), set up once a wait
	// begins, undone by stop.
	watched bool         // changes at the path wake this waiter
	exits   map[int]bool // local holders whose exit wakes this waiter
	stops   []func()
}

func (l *Lock) newWaitState() *waitState { return &waitState{l: l} }

// follow arranges for the waiter to be woken by changes at the lock path
// (W1) and by the exit of the live local holders named in blk (a wake-up only
// makes the waiter look again, so a fake process table does no harm). It reports
// whether the path's watch was only now set up: then the caller must try
// again before it waits, since a change just before the watch is missed.
func (ws *waitState) follow(blk *LockedError) (retry bool) {
	l := ws.l
	if !ws.watched {
		ws.watched = true
		ws.stops = append(ws.stops, watchPath(l.store.Path(), l.wake))
		retry = true
	}
	if blk == nil {
		return retry
	}
	for _, o := range blk.Owners {
		if stale.Of(o) != l.cfg.Checker.Local || ws.exits[o.PID] || len(ws.exits) >= 8 {
			continue
		}
		if ws.exits == nil {
			ws.exits = map[int]bool{}
		}
		ws.exits[o.PID] = true
		still := func() bool { return l.cfg.Checker.Judge(o).Verdict == stale.Alive }
		ws.stops = append(ws.stops, watchExit(o.PID, still, l.wake))
	}
	return retry
}

// stop undoes follow. P.want stays: other waiters may have announced
// themselves there too (yield removes it once it is found stale).
func (ws *waitState) stop() {
	for _, f := range ws.stops {
		f()
	}
	ws.stops, ws.exits, ws.watched = nil, nil, false
}

// guardSuffix names P.break, the breaker guard.
const guardSuffix = ".break"

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
	if l.cfg.handoff > 0 {
		return l.cfg.handoff
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

// pauseGuard waits a little while a breaker guard is held (W3). A guard is held
// only for the few operations of a break or a handoff, so it is polled
// quickly whatever the poll settings (which may be long, for a holder).
func (ws *waitState) pauseGuard(ctx context.Context) error {
	cfg := &ws.l.cfg
	hi := min(cfg.PollMax, 10*time.Millisecond)
	ws.gdelay = min(max(ws.gdelay*2, min(cfg.PollMin, time.Millisecond)), hi)
	t := time.NewTimer(ws.gdelay/2 + rand.N(ws.gdelay/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
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
		if _, err := os.Lstat(l.store.Path()); !errors.Is(err, fs.ErrNotExist) {
			blk, err := l.inspect(ctx, ws) // name who holds it
			if err == nil && blk == nil {
				blk = &LockedError{Reason: "waiters are queued"}
			} else if blk != nil {
				blk.Reason += "; waiters are queued"
			}
			return nil, blk, err
		}
		l.rw.kick()
		// A queue left empty (by a crash, or a neighbour's that this user
		// may not remove) has no one to pass: go on.
		if l.rw.hasWaiters() {
			return nil, &LockedError{Reason: "waiters are queued"}, nil
		}
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
		l.abandon(ctx, ws, nil)
		if errors.Is(err, ErrNotLock) {
			return nil, nil, err
		}
		return nil, &LockedError{Reason: err.Error()}, nil
	}
	token, err := nextToken(last, 1)
	if err != nil {
		e.Close()
		l.abandon(ctx, ws, nil)
		return nil, nil, err
	}
	owner, err := stale.Self(token, stale.ModeExclusive, now)
	if err != nil {
		e.Close()
		l.abandon(ctx, ws, nil)
		return nil, nil, err
	}
	rec := owner.Marshal()
	// A4: write the record; on a network filesystem, make it visible.
	if _, err := e.WriteAt(rec, 0); err == nil && l.sync {
		err = e.Sync()
		if err != nil {
			e.Close()
			l.abandon(ctx, ws, rec)
			return nil, nil, &fs.PathError{Op: "sync", Path: l.store.Path(), Err: unwrapPath(err)}
		}
	} else if err != nil {
		e.Close()
		l.abandon(ctx, ws, rec)
		return nil, nil, &fs.PathError{Op: "write", Path: l.store.Path(), Err: unwrapPath(err)}
	}
	// A5: a breaker that saw our entry before the record was written may be
	// at work; decide nothing until no guard is held.
	if err := l.waitGuardClear(ctx, ws); err != nil {
		e.Close()
		l.abandon(ctx, ws, rec)
		return nil, nil, err
	}
	// A6: verify that the entry at the path is ours: on a local filesystem
	// by its inode (which cannot be reused while we hold it open), else by
	// its bytes.
	if id, ok := entryID(e); ok && l.local {
		if at, known := idAt(id, recordPath(l.store)); known {
			if at {
				h := l.newHold(owner, e, now)
				h.id, h.idKnown = id, true
				return h, nil, nil
			}
			e.Close()
			return nil, nil, nil // displaced while undecided; try again
		}
	}
	data, err := l.store.Read()
	if err == nil && bytes.Equal(data, rec) {
		return l.newHold(owner, e, now), nil, nil
	}
	e.Close()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Undecided, and we will not hold it: our record, if it is there,
		// names a live process, which no one on this host would break.
		l.abandon(ctx, ws, rec)
		return nil, nil, err
	}
	return nil, nil, nil // displaced while undecided; try again
}

// abandon removes an entry this attempt created but will not hold: empty
// (rec == nil) or carrying rec. Anything else at the path is left alone.
//
// It holds the breaker guard while it works: Retire puts back a record it
// moved and found not ours, and only the guard keeps an entry created at
// the path meanwhile undecided (A5) — without it, the put-back could
// replace a lock its creator had already verified and now holds. The
// caller waits for it until ctx is done (see cleanup).
func (l *Lock) abandon(ctx context.Context, ws *waitState, rec []byte) {
	var uuid string
	if o, err := stale.Parse(rec); err == nil {
		uuid = o.UUID
	}
	ctx, cancel := ws.cleanupCtx(ctx)
	defer cancel()
	gws := l.newWaitState()
	l.cleanup(ctx, func(bg context.Context) error {
		return l.underGuard(bg, gws, func(time.Time) error {
			ok, err := l.store.Retire(false, func(moved []byte) bool {
				return len(moved) == 0 || mine(moved, rec, uuid)
			})
			return doneUnlessLeft(ok, err)
		})
	})
}

// mine reports whether moved is the record rec, or what a torn write of it
// left: a prefix that carries rec's whole UUID, which no one else's record
// has. (A shorter one cannot be told from another's: it is left to the
// grace period, P5.)
func mine(moved, rec []byte, uuid string) bool {
	return bytes.Equal(moved, rec) ||
		(uuid != "" && bytes.HasPrefix(rec, moved) && bytes.Contains(moved, []byte(uuid)))
}

// doneUnlessLeft is the error of a Retire that a retry should repeat: none
// once the record has left the path (ok), even if what was moved aside
// could not be removed — a retry would move whatever stands at the path
// by then, someone else's.
func doneUnlessLeft(ok bool, err error) error {
	if ok {
		return nil
	}
	return err
}

// retry runs fn again while it fails, for up to the lease (StaleAfter, and
// at least twice the grace period: each failed write of a guard leaves an
// empty one that stands for the grace period), and
// returns its first error if it never succeeds (a later ErrLost may be the
// work of an earlier try whose reply was lost). It is for cleanups that
// must not be given up at the first transient error (EIO from a network
// filesystem, say): a record left at the path names this process, which
// lives on, so no one on this host would ever break it.
func (l *Lock) retry(fn func() error) error {
	first := fn()
	if first == nil || permanent(first) {
		return first
	}
	// Backoff from 1 ms, whatever PollMin says (it may be long, for a
	// holder), to at most PollMax or 100 ms.
	delay, hi := time.Millisecond, min(max(l.cfg.PollMax, time.Millisecond), 100*time.Millisecond)
	for start := time.Now(); time.Since(start) < max(l.cfg.StaleAfter, 2*l.cfg.Grace); {
		time.Sleep(delay/2 + rand.N(delay/2+1))
		delay = min(2*delay, hi)
		err := fn()
		if err == nil {
			return nil
		}
		if permanent(err) {
			break
		}
	}
	return first
}

// permanent reports errors a retry cannot mend: the hold is lost, the
// file is another user's (ForeignError), or not dotlock's (ErrNotLock).
func permanent(err error) bool {
	return errors.Is(err, ErrLost) || foreignErr(err) || errors.Is(err, ErrNotLock)
}

// inspect reads the record at the path and decides: held by the living
// (who is returned), being written (within grace), or stale — then broken.
func (l *Lock) inspect(ctx context.Context, ws *waitState) (*LockedError, error) {
	data, err := l.store.Read()
	if errors.Is(err, fs.ErrNotExist) {
		// Whatever stands here next is a new record: an empty one must
		// not inherit the age of an empty one seen before.
		ws.holder.Reset()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if l.rw != nil {
		if o, err := stale.Parse(data); err == nil && o.Mode == stale.ModeShared {
			return l.rw.inspectGroup(ctx, ws)
		}
	}
	victim, reason, blk := l.judge(&ws.holder, data, l.cfg.Grace, l.cfg.StaleAfter)
	if blk != nil {
		return blk, nil
	}
	// A lock directory without a record for the grace period: a group
	// whose last reader crashed while dissolving it is repaired, not
	// broken. Looked for only now: an empty directory is mostly one being
	// made or released, and listing it on every look would, on Windows,
	// keep its holder from removing it (a sharing violation).
	if l.rw != nil && len(data) == 0 {
		if repaired, err := l.rw.repairAnchor(ctx, ws); repaired || err != nil {
			return nil, err
		}
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
	j := l.judgeHolder(o, data)
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

// underGuard runs fn under the breaker guard, waiting while it is busy.
func (l *Lock) underGuard(ctx context.Context, ws *waitState, fn func(deadline time.Time) error) error {
	for {
		err := l.withGuard(ctx, ws, fn)
		if !errors.Is(err, errGuardBusy) {
			return err
		}
		if err := ws.pauseGuard(ctx); err != nil {
			return err
		}
	}
}

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
	// B1 (below): on a local filesystem the guard is recognised by its
	// inode, pinned while the entry is open.
	at, known := false, false
	if id, ok := entryID(e); ok && l.local && werr == nil {
		at, known = idAt(id, l.guard.Path())
	}
	e.Close()
	// B5: release the guard only if it is still ours (or still empty, if
	// our write failed: ENOSPC); tried again after a transient error, since
	// a guard left behind names this live process and would stop every
	// acquirer on this host (A5).
	b5 := func() {
		cctx, cancel := ws.cleanupCtx(ctx)
		defer cancel()
		l.cleanup(cctx, func(context.Context) error {
			ok, err := l.guard.Retire(false, func(moved []byte) bool {
				return mine(moved, rec, o.UUID) || (werr != nil && len(moved) == 0)
			})
			return doneUnlessLeft(ok, err)
		})
	}
	if werr != nil {
		b5()
		return &fs.PathError{Op: "write", Path: l.guard.Path(), Err: unwrapPath(werr)}
	}
	// B1 (model: B1v): verify, as A6 does for the lock. Until written, our
	// guard was empty, and an observer that had watched an earlier empty
	// guard (a creator's whose reply was lost, or a breaker's paused past
	// the grace period) may have taken ours for it and broken it (P5). Act
	// only if the guard is ours now; a breaker that moves it later finds
	// it changed and puts it back.
	if known && !at {
		return errGuardBusy // not ours: leave it alone
	}
	if !known {
		data, err := l.guard.Read()
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !bytes.Equal(data, rec)) {
			return errGuardBusy // not ours: leave it alone
		}
		if err != nil {
			b5()
			return err
		}
	}
	defer b5()
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
		ws.guardObs.Reset() // as in inspect
		foreignGuards.Delete(l.guard.Path())
		return true, nil
	}
	if err != nil {
		return false, err
	}
	ob, done := guardObservation(ws, l.guard.Path())
	_, why, blk := l.judge(ob, data, l.cfg.Grace, l.guardLease())
	done()
	if blk != nil && !l.orphanGuard(ws, data) {
		return false, nil
	}
	if blk != nil {
		why = "its holder has not changed it for the guard's lease"
	}
	ok, err := l.guard.Retire(false, func(moved []byte) bool { return bytes.Equal(moved, data) })
	if err != nil {
		// Another user's guard in a sticky directory: no retry helps (see
		// foreignErr); said at once, with whose file it is.
		return false, &BreakError{Reason: "breaker guard " + l.guard.Path() + " left behind: " + why, Err: unwrapPath(err)}
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
		if err := gw.pauseGuard(ctx); err != nil {
			return err
		}
	}
}

// install makes h the handle's hold and starts its heartbeat.
func (l *Lock) install(h *hold) {
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	l.startHeartbeat(h)
}

// startHeartbeat rewrites h's heartbeat every Heartbeat until stopped or
// lost (H1..H3). A timer rather than a goroutine per hold: nothing runs
// between beats.
func (l *Lock) startHeartbeat(h *hold) {
	h.beatMu.Lock()
	defer h.beatMu.Unlock()
	h.timer = time.AfterFunc(l.cfg.Heartbeat, func() {
		h.beatMu.Lock()
		defer h.beatMu.Unlock()
		if h.stopped {
			return
		}
		err := l.beat(h)
		if l.cfg.afterBeat != nil {
			l.cfg.afterBeat(err)
		}
		if err != nil {
			h.lostErr = err
			close(h.lost)
			return
		}
		h.timer.Reset(l.cfg.Heartbeat)
	})
}

// stopHeartbeat stops h's heartbeat; a beat under way finishes first.
func (l *Lock) stopHeartbeat(h *hold) {
	h.beatMu.Lock()
	defer h.beatMu.Unlock()
	h.stopped = true
	h.timer.Stop()
}

// lapsed reports whether h went so long without a heartbeat that another
// host may have judged its lease lapsed and be breaking it right now.
func (l *Lock) lapsed(h *hold, now time.Time) bool {
	return now.Sub(h.lastBeat) > l.cfg.StaleAfter/2
}

// beat proves h still holds the path and advances its heartbeat. It returns
// an error only when the hold is proven lost (H1: the record at the path is
// not ours); other errors wait for the next beat (and, if they last, make
// the hold lapse: then the next look that succeeds decides, under the
// guard). Out of descriptors for longer than StaleAfter/2, the guard could
// not be created (EMFILE), and that used to count as lost.
func (l *Lock) beat(h *hold) error {
	now := l.cfg.Clock.Now()
	prove := func(deadline time.Time) error {
		// H1: is the record at the path still ours?
		data, err := h.read()
		if errors.Is(err, fs.ErrNotExist) {
			return &LostError{Reason: "the lock was removed"}
		}
		if err != nil {
			if errors.Is(err, ErrNotLock) {
				return notOurs(err)
			}
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
	if !errors.Is(err, ErrLost) {
		return nil // the guard busy, or not to be had now: try again next beat
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
//
// It takes a few filesystem operations. Its worst case: a release that
// fails with a transient error (EIO from a network filesystem, say) is
// tried again for up to StaleAfter (at least twice Grace), since a record
// left behind would name this live process, which no one on this host
// breaks; and a release made under the breaker guard (after the hold's
// lease lapsed; always for RUnlock) first waits for a guard held by
// others, up to the guard's lease (4×StaleAfter) for one left behind by a
// breaker that died on another host. With the defaults: 30 s, plus 2 min
// for such a guard.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	h := l.hold
	l.hold = nil
	l.mu.Unlock()
	if h == nil {
		return l.pathErr("unlock", ErrNotHeld)
	}
	l.stopHeartbeat(h)
	err := l.release(h)
	l.wake.released(l.cfg.Clock.Now(), h.owner.Token)
	<-l.sem
	l.wake.notify()
	if err != nil {
		return l.pathErr("unlock", err)
	}
	return nil
}

// release is the checked release (R1..R3).
func (l *Lock) release(h *hold) error {
	// R1, on a local filesystem: is our entry (its inode pinned by our
	// descriptor) still the one at the path?
	at := false
	if h.idKnown {
		at, _ = idAt(h.id, recordPath(l.store))
	}
	h.entry.Close() // before moving it: Windows cannot rename an open file
	select {
	case <-h.lost:
		return h.lostErr
	default:
	}
	// ours: the record carries this hold's UUID (package-level mine
	// compares whole records, for entries and guards).
	ours := func(data []byte) bool {
		o, err := stale.Parse(data)
		return err == nil && o.UUID == h.owner.UUID
	}
	// R2: move the record to the last-record slot (publishing the token
	// and freeing the path in one step). R1 has just proved it ours, and
	// only a breaker holding the guard could take it away — which needs a
	// lapse, and a lapsed release holds the guard itself. But act only by
	// the deadline: a pause after the lapse check (or in R1) may have let a
	// breaker judge the lease lapsed, and retiring then could move a
	// successor's record, or lose the token the breaker just published
	// (model: R1). Then come round under the guard.
	retireMine := func(deadline time.Time) error {
		if l.cfg.Clock.Now().After(deadline) {
			return errGuardBusy
		}
		ok, err := h.retire(nil)
		if err := doneUnlessLeft(ok, err); err != nil {
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
	do := func(deadline time.Time) error {
		// R1: the record at the path must be ours.
		data, err := h.read()
		if errors.Is(err, fs.ErrNotExist) {
			return &LostError{Reason: "the lock was removed"}
		}
		if err != nil {
			return notOurs(err)
		}
		if !ours(data) {
			o, perr := stale.Parse(data)
			return lostTo(o, perr)
		}
		return retireMine(deadline)
	}
	// A release that fails for a transient error is tried again: given up,
	// it would leave a record naming this live process, which no one on
	// this host would break.
	ws := l.newWaitState() // across tries: a guard seen before is not new
	first := true
	return l.retry(func() error {
		err := errGuardBusy
		if now := l.cfg.Clock.Now(); !h.shared && !l.lapsed(h, now) {
			deadline := h.lastBeat.Add(l.cfg.StaleAfter / 2)
			if at && first {
				err = retireMine(deadline)
			} else {
				err = do(deadline) // reads the record, to name who has it if not us
			}
		}
		first = false
		if errors.Is(err, errGuardBusy) {
			// R3: after a lapse, and always for a shared hold (a change of
			// the holder set), release under the guard.
			err = l.underGuard(context.Background(), ws, do)
		}
		if err == nil && !h.shared && l.rw != nil {
			l.rw.kick()
		}
		return err
	})
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

// Token returns the fencing token of the current hold, or 0 if there is
// none. The current hold is the exclusive one, or else the newest shared
// hold still held (the one with the greatest token; RUnlock releases it
// first, so after RLock, RLock, RUnlock it is the first RLock's).
func (l *Lock) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.owner.Token
	}
	return 0
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Lost returns a channel that is closed when the current hold (as for
// Token) is found lost, at a heartbeat. When the handle holds nothing —
// before its first hold, and after its last release — the channel is
// already closed: with no hold there is nothing to keep, and a worker that
// checks Lost before it acts on what the lock protects stops, rather than
// going on unprotected. A hold's channel is closed only if that hold is
// lost, not by Unlock: a goroutine waiting on it must also stop when its
// work is done.
func (l *Lock) Lost() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.lost
	}
	return closedChan
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
