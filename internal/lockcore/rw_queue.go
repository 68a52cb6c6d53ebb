package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// queued reports whether anyone waits in the queue. It looks through o
// (nil: by name).
func (rw *rwSupport) queued(o *opDir) bool {
	// Only a directory is a queue: anything else there is a neighbour's,
	// which S2 refuses to queue in (ErrNotLock); it does not stop an
	// uncontended lock.
	m, err := o.lstat(rw.queue)
	return err == nil && m.IsDir()
}

// hasWaiters reports whether the queue holds a waiter's record: a record,
// not just a name a record would have (a neighbour's symlink, FIFO,
// directory or file so named, which the hand-on leaves alone, would
// otherwise stop TryLock for good).
func (rw *rwSupport) hasWaiters() bool {
	d, err := openLockDirToList(rw.queue)
	if err != nil {
		return false
	}
	defer d.close()
	names, _ := d.names()
	for _, n := range names {
		if _, _, _, ok := parseQueueName(n); !ok {
			continue
		}
		if data, err := d.read(n); err == nil {
			if _, perr := stale.Parse(data); perr == nil {
				return true
			}
		}
	}
	return false
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
func (rw rwIn) waiters() ([]waiter, error) {
	q, err := rw.openQueue()
	if q == nil {
		return nil, err
	}
	defer q.close()
	return q.readUntil(func(waiter) bool { return false }), nil
}

// readUntil reads the waiters in queue order until one for which last
// is true, and returns those it read that live.
func (q *queueListing) readUntil(last func(waiter) bool) []waiter {
	var ws []waiter
	for _, n := range q.names {
		w, ok := q.read(n)
		if !ok {
			continue
		}
		ws = append(ws, w)
		if last(w) {
			break
		}
	}
	return ws
}

// queueListing is the queue directory, open, with its waiters' names in
// queue order; their records are read one by one (read), as needed.
type queueListing struct {
	rw    *rwSupport
	d     *lockDir
	names []queuedName
}

// queuedName is a queue record's name, parsed.
type queuedName struct {
	name   string
	seq    uint64
	writer bool
}

// openQueue lists the queue; nil, with no error, if there is none. A
// neighbour's file (a symlink, a FIFO) at P.queue is none either: it stops
// no one from taking the lock, shared or not, nor a release from handing
// on; only a waiter, which cannot queue there (makeQueue refuses it).
func (rw rwIn) openQueue() (*queueListing, error) {
	d, err := rw.o.openLockDirToList(rw.queue) // never a directory a symlink points to
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotLock) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := d.names()
	if err != nil {
		d.close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // removed while we listed it: no one waits
		}
		return nil, err
	}
	rw.forgetGoneWaiters(names)
	q := &queueListing{rw: rw.rwSupport, d: d}
	for _, n := range names {
		if seq, writer, _, ok := parseQueueName(n); ok { // else not ours: left alone
			q.names = append(q.names, queuedName{n, seq, writer})
		}
	}
	sort.Slice(q.names, func(i, j int) bool { return q.names[i].seq < q.names[j].seq })
	return q, nil
}

func (q *queueListing) close() { q.d.close() }

// read reads and judges one waiter's record. ok is false if it cannot be
// read (it is left alone), or it is a dead waiter's or one it never
// finished (it is removed).
func (q *queueListing) read(n queuedName) (waiter, bool) {
	uid := -1
	data, err := q.d.readOwner(n.name, &uid)
	if err != nil {
		return waiter{}, false // gone, or not a record (never removed)
	}
	o, perr := stale.Parse(data)
	if perr != nil || q.rw.waiterGone(n.name, data, o) || q.rw.l.forgedFile(o, uid) {
		q.d.remove(n.name) // a dead waiter, or a record it never finished
		return waiter{}, false
	}
	return waiter{name: n.name, seq: n.seq, writer: n.writer, data: data, owner: o}, true
}

// anyReader reports whether a reader's record is among the names.
func (q *queueListing) anyReader() bool {
	for _, n := range q.names {
		if !n.writer {
			return true
		}
	}
	return false
}

// nextTurn is what schedule needs of the queue: every waiter when readers
// queue (a group takes them all); else the first live writer, and only
// the records up to its own are read (and their processes judged), under
// the guard every waiter needs to queue.
func (q *queueListing) nextTurn() []waiter {
	readers := q.anyReader()
	return q.readUntil(func(w waiter) bool { return !readers && w.writer })
}

// lastSeq is the highest sequence number of a live waiter's record in the
// queue (0 if none), read from the back of the queue: a new waiter queues
// after it.
func (rw rwIn) lastSeq() (uint64, error) {
	q, err := rw.openQueue()
	if q == nil {
		return 0, err
	}
	defer q.close()
	for i := len(q.names) - 1; i >= 0; i-- {
		if w, ok := q.read(q.names[i]); ok {
			return w.seq, nil
		}
	}
	return 0, nil
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
	ob := observationOf(&rw.queueObs, name)
	return ob.See(string(data), rw.l.cfg.Clock.Now()) >= rw.l.cfg.StaleAfter
}

// observeQueue looks at the queue's remote waiters (see waiterGone),
// changing nothing.
func (rw *rwSupport) observeQueue() {
	d, err := openLockDirToList(rw.queue)
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
func (rw rwIn) enqueue(o stale.Owner, writer bool) (string, Entry, error) {
	last, err := rw.lastSeq()
	if err != nil {
		return "", nil, err
	}
	seq := last + 1
	d, err := rw.makeQueue()
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

// makeQueue makes the queue directory if it is missing and opens it. A
// waiter that leaves removes it once empty, outside the guard: if it goes
// between the mkdir and the open, it is made again.
func (rw rwIn) makeQueue() (*lockDir, error) {
	for try := 0; ; try++ {
		if err := rw.o.mkdir(rw.queue, fs.FileMode(rw.l.cfg.Perm)|0o111); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		d, err := rw.o.openLockDir(rw.queue)
		if !errors.Is(err, fs.ErrNotExist) || try == 4 {
			return d, err
		}
	}
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
func (rw rwIn) dequeue(name string) error {
	d, err := rw.o.openLockDir(rw.queue)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = d.remove(name)
	d.close()
	rw.o.rmdir(rw.queue)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
