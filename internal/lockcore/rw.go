package lockcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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

// under runs fn holding the guard, waiting while it is busy (underGuard,
// for fns that have no use for the deadline: they do a few operations).
func (rw *rwSupport) under(ctx context.Context, ws *waitState, fn func() error) error {
	return rw.l.underGuard(ctx, ws, func(time.Time) error { return fn() })
}

func (rw *rwSupport) readerPath(uuid string) string {
	return filepath.Join(rw.dir.Path(), readerPrefix+uuid)
}

// readerNames lists the reader records in P (O(readers); only writers and
// the last reader to leave pay it). A directory holding anything the
// protocol does not make is not a lock (P10): an error matching ErrNotLock,
// and nothing in it is judged, repaired or removed.
func (rw *rwSupport) readerNames() ([]string, error) {
	names, err := listIn(rw.dir.Path())
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

// queued reports whether anyone waits in the queue.
func (rw *rwSupport) queued() bool {
	// Only a directory is a queue: anything else there is a neighbour's,
	// which S2 refuses to queue in (ErrNotLock); it does not stop an
	// uncontended lock.
	st, err := os.Lstat(rw.queue)
	return err == nil && st.IsDir()
}

// hasWaiters reports whether the queue holds a waiter's record.
func (rw *rwSupport) hasWaiters() bool {
	d, err := openLockDir(rw.queue)
	if err != nil {
		return false
	}
	defer d.close()
	names, _ := d.names()
	for _, n := range names {
		if _, _, _, ok := parseQueueName(n); ok {
			return true
		}
	}
	return false
}

// kick hands the lock to waiters if it is free and anyone queues. Called
// after an exclusive release. If the guard is busy, its holder (or a
// waiter, woken by its release or polling) hands on.
func (rw *rwSupport) kick() {
	if !rw.queued() {
		return
	}
	rw.l.wake.notify()
	ctx, cancel := context.WithTimeout(context.Background(), rw.l.cfg.StaleAfter)
	defer cancel()
	rw.schedOnce(ctx, rw.l.newWaitState())
}

// schedOnce runs schedule under the guard if the guard is free.
func (rw *rwSupport) schedOnce(ctx context.Context, ws *waitState) error {
	err := rw.l.withGuard(ctx, ws, func(time.Time) error { return rw.schedule() })
	if errors.Is(err, errGuardBusy) {
		return nil
	}
	return err
}

// inspectGroup judges a shared group (S6): it blocks while any reader lives;
// dead readers are removed; an empty or all-dead group is dissolved and the
// lock handed on. It returns who blocks, or nil to try again at once.
func (rw *rwSupport) inspectGroup(ctx context.Context, ws *waitState) (*LockedError, error) {
	names, err := rw.readerNames()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	if ws.readerObs == nil {
		ws.readerObs = map[string]*stale.Observation{}
	}
	var alive []stale.Owner
	blocked := false
	type victim struct {
		name string
		data []byte
	}
	var dead []victim
	reason := ""
	for _, n := range names {
		data, err := readIn(rw.dir.Path(), n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ob := ws.readerObs[n]
		if ob == nil {
			ob = new(stale.Observation)
			ws.readerObs[n] = ob
		}
		_, why, blk := rw.l.judge(ob, data, rw.l.cfg.Grace, rw.l.cfg.StaleAfter)
		if blk != nil {
			blocked = true
			alive = append(alive, blk.Owners...)
			if reason == "" {
				reason = "shared: " + blk.Reason
			}
			continue
		}
		dead = append(dead, victim{n, data})
		if reason == "" {
			reason = "dead reader: " + why
		}
	}
	if len(dead) > 0 || !blocked {
		err := rw.under(ctx, ws, func() error {
			for _, v := range dead {
				p := filepath.Join(rw.dir.Path(), v.name)
				if _, err := retireFile(p, false, func(m []byte) bool { return bytes.Equal(m, v.data) }); err != nil {
					return &BreakError{Reason: "dead reader " + v.name, Err: unwrapPath(err)}
				}
			}
			if !blocked {
				return rw.dissolve()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if blocked {
		return &LockedError{Owners: alive, Reason: reason}, nil
	}
	return nil, nil
}

// dissolve removes a group with no readers left (its anchor goes to
// P.last, publishing the group's last token), then hands the lock on.
// Under the guard.
func (rw *rwSupport) dissolve() error {
	data, err := rw.dir.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return rw.schedule()
	}
	if err != nil {
		return err
	}
	o, perr := stale.Parse(data)
	if perr != nil || o.Mode != stale.ModeShared {
		return nil // not a group (any more): nothing of ours to do
	}
	ok, err := rw.dir.Retire(true, func(m []byte) bool { return bytes.Equal(m, data) })
	if err != nil || !ok {
		return err // readers left, or it changed: leave it
	}
	return rw.schedule()
}

// readerLeft runs under the guard after a reader's record is gone (S5).
func (rw *rwSupport) readerLeft() error {
	if err := rw.dissolve(); err != nil {
		return err
	}
	rw.l.wake.notify()
	return nil
}

// waiter is one record in the queue.
type waiter struct {
	name   string
	seq    uint64
	writer bool
	data   []byte
	owner  stale.Owner
}

// waiters lists the queue in order, dropping records of dead same-host
// waiters (a remote waiter cannot be judged in one look: if it is dead, the
// lock handed to it lapses like any remote holder's).
func (rw *rwSupport) waiters() ([]waiter, error) {
	d, err := openLockDir(rw.queue) // never a directory a symlink points to
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.close()
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	rw.forgetGoneWaiters(names)
	var ws []waiter
	for _, n := range names {
		seq, writer, _, ok := parseQueueName(n)
		if !ok {
			continue // not ours: left alone
		}
		data, err := d.read(n)
		if err != nil {
			continue // gone, or not a record (never removed)
		}
		o, perr := stale.Parse(data)
		if perr != nil || rw.waiterGone(n, data, o) {
			d.remove(n) // a dead waiter, or a record it never finished
			continue
		}
		ws = append(ws, waiter{name: n, seq: seq, writer: writer, data: data, owner: o})
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].seq < ws[j].seq })
	return ws, nil
}

// queueName is the name of a waiter's record in the queue.
func queueName(seq uint64, writer bool, uuid string) string {
	kind := "r"
	if writer {
		kind = "w"
	}
	return fmt.Sprintf("%020d.%s.%s", seq, kind, uuid)
}

// parseQueueName parses a name queueName made; ok is false for any other.
func parseQueueName(n string) (seq uint64, writer bool, uuid string, ok bool) {
	f := strings.SplitN(n, ".", 3)
	if len(f) != 3 || len(f[0]) != 20 || (f[1] != "w" && f[1] != "r") || !isUUID(f[2]) {
		return 0, false, "", false
	}
	seq, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, false, "", false
	}
	return seq, f[1] == "w", f[2], true
}

// waiterGone reports whether a queued waiter is dead: on this host by the
// process checks; elsewhere when its record (which it heartbeats while it
// waits) has stayed the same for StaleAfter by this process's observation,
// kept across calls — waiters observe the queue while they wait, so that a
// dead remote waiter is passed over rather than handed the lock.
func (rw *rwSupport) waiterGone(name string, data []byte, o stale.Owner) bool {
	switch rw.l.cfg.Checker.Judge(o).Verdict {
	case stale.Dead:
		return true
	case stale.Alive:
		return false
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.queueObs == nil {
		rw.queueObs = map[string]*stale.Observation{}
	}
	ob := rw.queueObs[name]
	if ob == nil {
		ob = new(stale.Observation)
		rw.queueObs[name] = ob
	}
	return ob.See(string(data), rw.l.cfg.Clock.Now()) >= rw.l.cfg.StaleAfter
}

// observeQueue looks at the queue's remote waiters (see waiterGone),
// changing nothing.
func (rw *rwSupport) observeQueue() {
	d, err := openLockDir(rw.queue)
	if err != nil {
		return
	}
	defer d.close()
	names, err := d.names()
	if err != nil {
		return
	}
	rw.forgetGoneWaiters(names)
	for _, n := range names {
		if _, _, _, ok := parseQueueName(n); !ok {
			continue
		}
		if data, err := d.read(n); err == nil {
			if o, err := stale.Parse(data); err == nil {
				rw.waiterGone(n, data, o)
			}
		}
	}
}

// beatQueued advances the heartbeat of the caller's queue record name,
// through the descriptor it was created with (never reopened by name: a
// neighbour may have put a hard link to another file, or a FIFO, there).
// On Windows, where a queue record kept open cannot go while it is (a
// removed file open elsewhere stays, delete pending, and the waiter would
// not see it dropped), e is nil and the record is opened by name, without
// following a reparse point.
func (rw *rwSupport) beatQueued(e Entry, name string, me *stale.Owner, now time.Time) {
	if e == nil {
		f, err := openFile(filepath.Join(rw.queue, name), os.O_WRONLY|oNoFollow|oNonblock, 0)
		if err != nil {
			return
		}
		defer f.Close()
		e = f
	}
	me.Beat++
	me.BeatTime = now
	if _, err := e.WriteAt(me.HeartbeatLine(), me.HeartbeatOffset()); err == nil && rw.l.sync {
		e.Sync()
	}
}

// enqueue adds the caller to the queue (S2). Under the guard. It returns
// the record's name (even on failure: the record may be there all the
// same) and its entry, kept open for the waiter's heartbeats.
func (rw *rwSupport) enqueue(o stale.Owner, writer bool) (string, Entry, error) {
	ws, err := rw.waiters()
	if err != nil {
		return "", nil, err
	}
	seq := uint64(1)
	if len(ws) > 0 {
		seq = ws[len(ws)-1].seq + 1
	}
	if err := os.Mkdir(rw.queue, fs.FileMode(rw.l.cfg.Perm)|0o111); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", nil, err
	}
	d, err := openLockDir(rw.queue)
	if err != nil {
		return "", nil, err
	}
	defer d.close()
	name := queueName(seq, writer, o.UUID)
	e, err := d.create(name, fs.FileMode(rw.l.cfg.Perm))
	if err != nil {
		return name, nil, err
	}
	if err := rw.l.writeEntry(e, o.Marshal()); err != nil || !keepQueueOpen {
		e.Close()
		return name, nil, err
	}
	return name, e, nil
}

// removeQueued removes the caller's queue record name, leaving the queue
// directory (removed under the guard).
func (rw *rwSupport) removeQueued(name string) error {
	d, err := openLockDir(rw.queue)
	if err == nil {
		err = d.remove(name)
		d.close()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// dequeue removes the queue record name; it fails only if the record may
// still be there. The queue directory goes too once empty (rmdir: never a
// symlink put in its place, never anything inside).
func (rw *rwSupport) dequeue(name string) error {
	d, err := openLockDir(rw.queue)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = d.remove(name)
	d.close()
	rmdir(rw.queue)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// lastMode is the mode of the last hold that left P, if any did.
func (rw *rwSupport) lastMode() (string, bool) {
	if last, err := rw.dir.ReadLast(); err == nil {
		if o, err := stale.Parse(last); err == nil {
			return o.Mode, true
		}
	}
	return "", false
}

// schedule hands a free P to the queue (S4): after a writer, all waiting
// readers together; after readers, the first waiting writer; a writer
// queued before a reader still goes first when no group preceded. Under
// the guard.
func (rw *rwSupport) schedule() error {
	if _, err := os.Lstat(rw.dir.Path()); err == nil {
		return nil // held: its holder hands on when it leaves
	}
	ws, err := rw.waiters()
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		rmdir(rw.queue) // only if empty
		return nil
	}
	var readers, writers []waiter
	for _, w := range ws {
		if w.writer {
			writers = append(writers, w)
		} else {
			readers = append(readers, w)
		}
	}
	defer rw.l.wake.notify()
	last, err := rw.l.lastToken(rw.dir, &rw.last)
	if err != nil {
		return nil // P.last unreadable for now: a later schedule hands on
	}
	now := rw.l.cfg.Clock.Now()
	readersTurn := len(writers) == 0
	if len(readers) > 0 && len(writers) > 0 {
		if mode, ok := rw.lastMode(); ok {
			readersTurn = mode != stale.ModeShared // phases alternate
		} else {
			readersTurn = readers[0].seq < writers[0].seq // no history: queue order
		}
	}
	n := uint64(1)
	if readersTurn {
		n = uint64(len(readers))
	}
	token, err := nextToken(last, n)
	if err != nil {
		return err
	}
	if readersTurn {
		// A group for every waiting reader.
		anchor, err := stale.Self(token+uint64(len(readers))-1, stale.ModeShared, now)
		if err != nil {
			return err
		}
		if err := rw.createP(anchor.Marshal()); err != nil {
			return ignoreExist(err)
		}
		for i, r := range readers {
			o := r.owner
			o.Token, o.Acquired, o.Mode = token+uint64(i), now, stale.ModeShared
			if err := rw.l.writeNewIn(rw.dir.Path(), readerPrefix+o.UUID, o.Marshal()); err != nil {
				return err
			}
			rw.dequeue(r.name)
		}
		return nil
	}
	w := writers[0]
	o := w.owner
	o.Token, o.Acquired, o.Mode = token, now, stale.ModeExclusive
	if err := rw.createP(o.Marshal()); err != nil {
		return ignoreExist(err)
	}
	rw.dequeue(w.name)
	return nil
}

// ignoreExist: a writer that did not see the queue took P first (a bounded
// barge: its release hands P to the queue).
func ignoreExist(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// createP makes P with the given owner record. Under the guard, with P free.
func (rw *rwSupport) createP(rec []byte) error {
	e, err := rw.dir.Create(fs.FileMode(rw.l.cfg.Perm))
	if err != nil {
		return err
	}
	defer e.Close()
	if _, err := e.WriteAt(rec, 0); err != nil {
		return err
	}
	if rw.l.sync {
		return e.Sync()
	}
	return nil
}

// writeEntry writes rec into the new entry e, synced where records must be.
func (l *Lock) writeEntry(e Entry, rec []byte) error {
	_, err := e.WriteAt(rec, 0)
	if err == nil && l.sync {
		err = e.Sync()
	}
	return err
}

// writeNewIn creates name exclusively inside the protocol's directory dir
// (P, or P.queue; never through a symlink at dir) with content rec.
func (l *Lock) writeNewIn(dir, name string, rec []byte) error {
	d, err := openLockDir(dir)
	if err != nil {
		return err
	}
	defer d.close()
	e, err := d.create(name, fs.FileMode(l.cfg.Perm))
	if err != nil {
		return err
	}
	err = l.writeEntry(e, rec)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeNew creates name exclusively with content rec.
func writeNew(name string, rec []byte, l *Lock) error {
	f, err := openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, fs.FileMode(l.cfg.Perm))
	if err != nil {
		return err
	}
	_, err = f.Write(rec)
	if err == nil && l.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// retireFile moves the record file p aside (or to p's last slot if keep)
// and removes it, if check approves what moved; otherwise puts it back.
func retireFile(p string, keep bool, check func([]byte) bool) (bool, error) {
	return NewFileStore(p).Retire(keep, check)
}

// adopt returns a hold if the record at path names uuid: the lock was
// handed to this waiter (S4).
func (l *Lock) adopt(path string, uuid string, shared bool) (*hold, error) {
	d, err := openLockDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.close()
	// Read through the descriptor the hold will heartbeat through.
	e, data, err := d.openRecord(filepath.Base(path))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	o, perr := stale.Parse(data)
	if perr != nil || o.UUID != uuid {
		e.Close()
		return nil, nil
	}
	h := l.newHold(o, e, l.cfg.Clock.Now())
	if shared {
		l.rw.makeShared(h, path)
	}
	return h, nil
}

// makeShared points h at its reader record instead of P's owner record.
func (rw *rwSupport) makeShared(h *hold, path string) {
	h.shared = true
	h.read = func() ([]byte, error) { return readIn(filepath.Dir(path), filepath.Base(path)) }
	h.retire = func(check func([]byte) bool) (bool, error) { return retireFile(path, false, check) }
}

// join adds a reader to a group, forming it if P is free (S1). Under the
// guard. It returns who blocks when the reader must wait.
func (rw *rwSupport) join(ws *waitState) (*hold, *LockedError, error) {
	l := rw.l
	queue, err := rw.waiters()
	if err != nil {
		return nil, nil, err
	}
	for _, w := range queue {
		if w.writer {
			return nil, &LockedError{Owners: []stale.Owner{w.owner}, Reason: "a writer is waiting (readers queue behind it)"}, nil
		}
	}
	now := l.cfg.Clock.Now()
	data, err := rw.dir.Read()
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(queue) > 0:
		// Only readers queue (writers were ruled out above): let them in
		// as a group, then join it.
		if err := rw.schedule(); err != nil {
			return nil, nil, err
		}
		return rw.join(ws)
	case errors.Is(err, fs.ErrNotExist):
		last, err := rw.l.lastToken(rw.dir, &ws.last)
		if err != nil {
			return nil, &LockedError{Reason: err.Error()}, nil
		}
		token, err := nextToken(last, 1)
		if err != nil {
			return nil, nil, err
		}
		anchor, err := stale.Self(token, stale.ModeShared, now)
		if err != nil {
			return nil, nil, err
		}
		if err := rw.createP(anchor.Marshal()); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, nil, nil // a writer took P first: try again
			}
			return nil, nil, err
		}
		return rw.addReader(token, now)
	case err != nil:
		return nil, nil, err
	}
	return rw.joinGroup(data, now)
}

// joinGroup adds a reader to the group whose anchor record is data (S1),
// or fails with errNotShared if data is not an anchor. Under the guard.
func (rw *rwSupport) joinGroup(data []byte, now time.Time) (*hold, *LockedError, error) {
	o, perr := stale.Parse(data)
	if perr != nil || o.Mode != stale.ModeShared {
		// Exclusive, a record being written, or readers without an
		// anchor: judged (or repaired) by inspect, outside the guard.
		return nil, nil, errNotShared
	}
	// S1: the anchor's token advances in place; the reader takes it.
	if err := rw.advanceAnchor(&o, data); err != nil {
		return nil, nil, err
	}
	return rw.addReader(o.Token, now)
}

var errNotShared = errors.New("not held in shared mode")

// advanceAnchor advances the anchor o (read as data) to the next token, in
// place, through a descriptor that it checks still holds data: written by
// name, a neighbour's hard link or FIFO put in its place would take the
// write (or block it). Under the guard.
func (rw *rwSupport) advanceAnchor(o *stale.Owner, data []byte) error {
	d, err := openLockDir(rw.dir.Path())
	if err != nil {
		return err
	}
	defer d.close()
	e, cur, err := d.openRecord(OwnerFile)
	if err != nil {
		return err
	}
	defer e.Close()
	if !bytes.Equal(cur, data) {
		return errAnchorMoved
	}
	if o.Token, err = nextToken(o.Token, 1); err != nil {
		return err
	}
	return rw.l.writeAt(e, o.TokenLine(), o.TokenOffset())
}

var errAnchorMoved = errors.New("the group's anchor changed under the guard")

// writeAt writes b at off into e, synced where records must be.
func (l *Lock) writeAt(e Entry, b []byte, off int64) error {
	_, err := e.WriteAt(b, off)
	if err == nil && l.sync {
		err = e.Sync()
	}
	return err
}

func (rw *rwSupport) addReader(token uint64, now time.Time) (*hold, *LockedError, error) {
	o, err := stale.Self(token, stale.ModeShared, now)
	if err != nil {
		return nil, nil, err
	}
	d, err := openLockDir(rw.dir.Path())
	if err != nil {
		return nil, nil, err
	}
	defer d.close()
	name := readerPrefix + o.UUID
	e, err := d.create(name, fs.FileMode(rw.l.cfg.Perm))
	if err != nil {
		return nil, nil, err
	}
	if err := rw.l.writeEntry(e, o.Marshal()); err != nil {
		// No hold without its record: a reader whose record is missing or
		// torn would be judged by others as not there, or dead.
		e.Close()
		d.remove(name)
		return nil, nil, err
	}
	h := rw.l.newHold(o, e, now)
	rw.makeShared(h, rw.readerPath(o.UUID))
	return h, nil, nil
}

// TryRLock takes a shared hold if it can be had now: P free or held in
// shared mode, and no writer queued. Otherwise it returns an error matching
// ErrLocked naming who is in the way. It waits for others as TryLock does:
// at most tryWait (1 s).
func (l *Lock) TryRLock() error {
	if l.rw == nil {
		return l.pathErr("rlock", errNoShared)
	}
	ctx, cancel := tryContext()
	defer cancel()
	ws := l.newWaitState()
	ws.try = true
	defer ws.stop()
	for range 4 {
		h, blk, err := l.tryShared(ctx, ws)
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
	return l.pathErr("rlock", &LockedError{Reason: "contended"})
}

var errNoShared = errors.New("shared locks need a lock directory (package lockdir)")

// RLock waits for a shared hold, queueing behind waiting writers, until
// it holds or ctx is done (then it returns ctx.Err() unchanged).
func (l *Lock) RLock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.rw == nil {
		return l.pathErr("rlock", errNoShared)
	}
	ws := l.newWaitState()
	defer ws.stop()
	var blocked *LockedError
	for range 4 {
		h, blk, err := l.tryShared(ctx, ws)
		if err != nil {
			return l.ctxOr(ctx, "rlock", err)
		}
		if h != nil {
			l.installShared(h)
			return nil
		}
		if blocked = blk; blk != nil {
			break // OnWait is told from the line or the queue
		}
	}
	h, err := l.waitInLine(ctx, ws, false, blocked)
	if err != nil {
		return l.ctxOr(ctx, "rlock", err)
	}
	l.installShared(h)
	return nil
}

func (l *Lock) ctxOr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	return l.pathErr(op, err)
}

// tryShared makes one try at a shared hold, without queueing.
func (l *Lock) tryShared(ctx context.Context, ws *waitState) (*hold, *LockedError, error) {
	var h *hold
	var blk *LockedError
	err := l.rw.under(ctx, ws, func() error {
		var err error
		h, blk, err = l.rw.join(ws)
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

// waitQueued queues the caller (S2) and waits until the lock is handed to
// it (S3), judging and breaking dead holders meanwhile.
func (l *Lock) waitQueued(ctx context.Context, ws *waitState, writer bool) (*hold, error) {
	rw := l.rw
	mode := stale.ModeShared
	if writer {
		mode = stale.ModeExclusive
	}
	me, err := stale.Self(0, mode, l.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	path := rw.dir.owner()
	if !writer {
		path = rw.readerPath(me.UUID)
	}
	var name string
	var qe Entry // our queue record, open for its heartbeats
	defer func() {
		if qe != nil {
			qe.Close()
		}
	}()
	enqueue := func() error {
		// A new beat each time: a record dropped as a dead remote waiter's
		// and written again must not read the same, or whoever dropped it
		// (its observation of those bytes running on) drops it again at
		// once, for good.
		me.Beat++
		me.BeatTime = l.cfg.Clock.Now()
		return rw.under(ctx, ws, func() error {
			if qe != nil {
				qe.Close()
			}
			var err error
			if name, qe, err = rw.enqueue(me, writer); err != nil {
				return err
			}
			return rw.schedule()
		})
	}
	if err := enqueue(); err != nil {
		if name != "" {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
		return nil, err
	}
	var last string
	lastBeat := l.cfg.Clock.Now()
	var lastObserved time.Time
	for {
		// Some turns come round without pausing (queued again, a watch
		// just set up): the context is checked here, not only in pause.
		if err := ctx.Err(); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
		woken := l.wake.channel()
		now := l.cfg.Clock.Now()
		if now.Sub(lastBeat) >= l.cfg.Heartbeat {
			rw.beatQueued(qe, name, &me, now)
			lastBeat = now
		}
		// Every other waiter's record is judged: a few times a heartbeat
		// is enough to see one stand still, and far cheaper than at every
		// wake-up.
		if now.Sub(lastObserved) >= l.cfg.Heartbeat/4 {
			rw.observeQueue()
			lastObserved = now
		}
		// S3: has the lock been handed to us? Look at the queue first: a
		// handoff writes P before it removes the queue record.
		_, qerr := os.Lstat(filepath.Join(rw.queue, name))
		if h, err := l.adopt(path, me.UUID, !writer); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		} else if h != nil {
			// The hand-over removed our queue record, unless it failed
			// half-way (S4 writes P first). Left there, the record would be
			// handed the lock again after us, and never take it: it names
			// this live process. (Only the record: the queue directory is
			// removed under the guard.)
			l.retry(func() error { return rw.removeQueued(name) })
			return h, nil
		}
		if errors.Is(qerr, fs.ErrNotExist) {
			// Out of the queue yet not holding: handed to us and taken away
			// again (a lapsed lease), or dropped. Queue again.
			if err := enqueue(); err != nil {
				return nil, l.leaveQueue(name, path, me.UUID, writer, err)
			}
			continue
		}
		// A reader whose queue holds no writer (the writer it queued
		// behind gave up) joins a group that holds P, rather than wait for
		// the group to dissolve while later readers join it.
		if !writer {
			if h, err := l.joinFromQueue(ctx, ws, name); err != nil || h != nil {
				if err != nil {
					return nil, l.leaveQueue(name, path, me.UUID, writer, err)
				}
				return h, nil
			}
		}
		// Judge what holds P; a free P is handed on under the guard.
		var blk *LockedError
		if _, err := os.Lstat(rw.dir.Path()); errors.Is(err, fs.ErrNotExist) {
			// One try: a busy guard means someone is handing on right now,
			// and its release wakes this waiter (W1) or its poll finds it.
			err = rw.schedOnce(ctx, ws)
			if err != nil {
				return nil, l.leaveQueue(name, path, me.UUID, writer, err)
			}
		} else if blk, err = l.inspect(ctx, ws); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
		// Not told of itself: handed the lock since the look above, it
		// adopts it next turn.
		if blk != nil && l.cfg.OnWait != nil && !slices.ContainsFunc(blk.Owners, func(o stale.Owner) bool { return o.UUID == me.UUID }) {
			if s := blk.Error(); s != last {
				last = s
				l.cfg.OnWait(blk)
			}
		}
		if ws.follow(blk) {
			continue
		}
		if err := ws.pause(ctx, woken, false); err != nil {
			return nil, l.leaveQueue(name, path, me.UUID, writer, err)
		}
	}
}

// leaveQueue takes a waiter that gives up out of the queue; if the lock was
// handed to it meanwhile, it is released (and handed on). It returns err.
func (l *Lock) leaveQueue(name, path, uuid string, writer bool, err error) error {
	ws := l.newWaitState()
	// Tried again on failure: a queue record, or a lock handed to it, left
	// behind names this live process, and would block this host for good.
	l.retry(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StaleAfter)
		defer cancel()
		if err := l.rw.under(ctx, ws, func() error { return l.rw.dequeue(name) }); err != nil {
			return err
		}
		h, err := l.adopt(path, uuid, !writer)
		if err != nil || h == nil {
			return err
		}
		return l.release(h) // handed to us meanwhile: hand it on
	})
	return err
}

// Readers returns the records of the shared holders of a lock directory.
func (l *Lock) Readers() ([]stale.Owner, error) {
	if l.rw == nil {
		return nil, l.pathErr("readers", errNoShared)
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
		data, err := readIn(l.rw.dir.Path(), n)
		if err != nil {
			continue
		}
		if o, err := stale.Parse(data); err == nil {
			os = append(os, o)
		}
	}
	return os, nil
}

// repairAnchor gives a group whose anchor is missing (its last reader
// crashed while dissolving it, between moving the anchor out and removing
// the directory) a new anchor, so that it can be joined and dissolved
// again. It reports whether it found reader records to repair for.
func (rw *rwSupport) repairAnchor(ctx context.Context, ws *waitState) (bool, error) {
	names, err := rw.readerNames()
	if errors.Is(err, ErrNotLock) {
		return false, err // not ours to repair
	}
	if err != nil || len(names) == 0 {
		return false, nil
	}
	return true, rw.under(ctx, ws, func() error {
		if data, err := rw.dir.Read(); err != nil || len(data) != 0 {
			return nil // gone, or repaired meanwhile
		}
		owners, err := rw.l.Readers()
		if err != nil {
			return err
		}
		token, err := rw.l.lastToken(rw.dir, &ws.last)
		if err != nil {
			return err
		}
		for _, o := range owners {
			token = max(token, o.Token)
		}
		anchor, err := stale.Self(token, stale.ModeShared, rw.l.cfg.Clock.Now())
		if err != nil {
			return err
		}
		return ignoreExist(rw.l.writeNewIn(rw.dir.Path(), OwnerFile, anchor.Marshal()))
	})
}

// joinFromQueue lets the queued reader name join the group holding P if no
// writer queues. It returns the hold, or nil (still queued, or out of the
// queue without a hold: the caller queues again).
func (l *Lock) joinFromQueue(ctx context.Context, ws *waitState, name string) (*hold, error) {
	rw := l.rw
	data, err := rw.dir.Read()
	if err != nil {
		return nil, nil
	}
	if o, perr := stale.Parse(data); perr != nil || o.Mode != stale.ModeShared {
		return nil, nil
	}
	var h *hold
	err = rw.under(ctx, ws, func() error {
		if _, err := os.Lstat(filepath.Join(rw.queue, name)); err != nil {
			return nil // handed the lock meanwhile (or dropped): the caller adopts, or queues again
		}
		q, err := rw.waiters()
		if err != nil {
			return err
		}
		for _, w := range q {
			if w.writer {
				return nil
			}
		}
		rw.dequeue(name)
		h, _, err = rw.join(ws)
		if errors.Is(err, errNotShared) {
			err = nil
		}
		return err
	})
	return h, err
}
