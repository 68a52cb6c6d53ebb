package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// layout is what differs between a lock file (package lockfile) and a lock
// directory (package lockdir), chosen once, in New, from the Store. The
// engine asks it wherever the two differ and tests nothing else: fileLayout
// does what a lock file does (the handoff yield and P.want, W4), dirLayout
// what a lock directory does (the process's line, the queue and shared
// groups, W5 and S1..S6, through rwSupport).
type layout interface {
	// ownerPath is the file that holds an exclusive hold's record: P, or
	// P/owner.
	ownerPath() string
	// readerPath is the file that holds the record of the shared hold
	// uuid; errNoShared for a lock file.
	readerPath(uuid string) (string, error)
	// sharedOK is nil if the lock can be held in shared mode (RLock,
	// TryRLock, Readers, shared Adopt and ReleaseFor), else errNoShared.
	sharedOK() error
	// group reports whether o, the record at the path, is the anchor of
	// a shared group, whose holders are its readers.
	group(o stale.Owner) bool

	// yield runs as Lock begins, before its first attempt.
	yield(ctx context.Context)
	// waitersAhead is who is in the way before A1 because others wait
	// their turn (no barging past them); nil, nil to go on and create.
	// It looks through o (nil: by name).
	waitersAhead(ctx context.Context, ws *waitState, o *opDir) (*LockedError, error)
	// blocked is Lock's wait once an attempt found blk in the way: it
	// returns the hold if it got one, or retry to attempt again at once;
	// with neither, Lock pauses and attempts again.
	blocked(ctx context.Context, ws *waitState, blk *LockedError, last *string) (h *hold, retry bool, err error)
	// repairEmpty runs when the record at the path has stayed empty for
	// the grace period, before it is broken: done (with who blocks, if
	// anyone, or err) means it is not to be broken.
	repairEmpty(ctx context.Context, ws *waitState) (blk *LockedError, done bool, err error)
	// handOn runs after an exclusive hold left the path (R3 does not
	// hand on). It looks through o (nil: by name).
	handOn(o *opDir)
	// freed runs under the breaker guard once a break freed the path,
	// in the guard section's directory o.
	freed(o *opDir) error
	// takesOver reports whether an attempt that breaks a stale record
	// takes the path it freed under the guard (B6).
	takesOver() bool
	// waiting counts the waiters queued (Status).
	waiting() int
}

// layoutFor is the layout of l's store: the one choice between a lock
// file and a lock directory. For a lock directory it also sets l.rw, the
// shared-mode support that the code dirLayout leads to works with.
func layoutFor(l *Lock) layout {
	ds, ok := l.store.(*DirStore)
	if !ok {
		return fileLayout{l}
	}
	l.rw = &rwSupport{l: l, dir: ds, queue: ds.Path() + ".queue"}
	return dirLayout{l.rw}
}

var errNoShared = errors.New("shared locks need a lock directory (package lockdir)")

// fileLayout is the layout of a lock file: the record is the file at P;
// waiters announce themselves in P.want and a releaser that comes
// straight back yields to them (W4). There are no shared holds.
type fileLayout struct{ l *Lock }

func (f fileLayout) ownerPath() string               { return f.l.store.Path() }
func (fileLayout) readerPath(string) (string, error) { return "", errNoShared }
func (fileLayout) sharedOK() error                   { return errNoShared }
func (fileLayout) group(stale.Owner) bool            { return false }
func (f fileLayout) yield(ctx context.Context)       { f.l.yield(ctx) }
func (fileLayout) handOn(*opDir)                     {}
func (fileLayout) freed(*opDir) error                { return nil }
func (fileLayout) takesOver() bool                   { return true }
func (fileLayout) waiting() int                      { return 0 }
func (fileLayout) waitersAhead(context.Context, *waitState, *opDir) (*LockedError, error) {
	return nil, nil
}

func (fileLayout) repairEmpty(context.Context, *waitState) (*LockedError, bool, error) {
	return nil, false, nil
}

func (f fileLayout) blocked(ctx context.Context, ws *waitState, blk *LockedError, last *string) (*hold, bool, error) {
	// Announced before the look that OnWait reports: a releaser that
	// comes back after it lets this waiter in (W4), so the hold named is
	// the last one ahead of it.
	ws.announce()
	if ws.follow(blk) {
		// The watch is new: the try again is a whole look (no probe,
		// W6), and reports to OnWait.
		ws.wokeUp()
		return nil, true, nil
	}
	if s := blk.Error(); s != *last && f.l.cfg.OnWait != nil {
		*last = s
		f.l.cfg.OnWait(blk)
	}
	return nil, false, nil
}

// dirLayout is the layout of a lock directory: the record is P/owner, a
// shared group keeps its readers' records beside it, and waiters wait in
// their process's line and then in the queue P.queue (rw.go).
type dirLayout struct{ rw *rwSupport }

func (d dirLayout) ownerPath() string                      { return d.rw.dir.owner() }
func (d dirLayout) readerPath(uuid string) (string, error) { return d.rw.readerPath(uuid), nil }
func (dirLayout) sharedOK() error                          { return nil }
func (dirLayout) group(o stale.Owner) bool                 { return o.Mode == stale.ModeShared }
func (dirLayout) yield(context.Context)                    {} // the queue takes turns (S2)
func (d dirLayout) handOn(o *opDir)                        { d.rw.kick(o) }
func (d dirLayout) freed(o *opDir) error                   { return d.rw.in(o).scheduleFreed() } // hand the freed lock to the queue
func (dirLayout) takesOver() bool                          { return false }                      // the queue's head takes it
func (d dirLayout) repairEmpty(ctx context.Context, ws *waitState) (*LockedError, bool, error) {
	return d.rw.repairAnchor(ctx, ws)
}

func (d dirLayout) waitersAhead(ctx context.Context, ws *waitState, o *opDir) (*LockedError, error) {
	rw := d.rw
	if !rw.queued(o) {
		return nil, nil
	}
	o.close() // what follows is by name (the slow path): one descriptor more
	// Waiters queue: no barging past them. The queue's own turn-taking
	// (rw_schedule.go) serves this caller.
	if _, err := os.Lstat(rw.l.store.Path()); !errors.Is(err, fs.ErrNotExist) {
		blk, err := rw.l.inspect(ctx, ws) // name who holds it
		if err == nil && blk == nil {
			blk = &LockedError{Cause: dotlock.WaitersQueued, Reason: "waiters are queued"}
		} else if blk != nil {
			blk.Reason += "; waiters are queued"
		}
		return blk, err
	}
	rw.kick(nil)
	// A queue left empty (by a crash, or a neighbour's that this user
	// may not remove) has no one to pass: go on.
	if rw.hasWaiters() {
		return &LockedError{Cause: dotlock.WaitersQueued, Reason: "waiters are queued"}, nil
	}
	return nil, nil
}

func (d dirLayout) blocked(ctx context.Context, ws *waitState, blk *LockedError, _ *string) (*hold, bool, error) {
	// A lock directory: wait in the process's line (line.go), then in
	// the queue, so that readers and writers take turns (rw_wait.go).
	// OnWait is told from the line or the queue.
	h, err := d.rw.l.waitInLine(ctx, ws, true, blk)
	return h, false, err
}

func (d dirLayout) waiting() int {
	n := 0
	// Never through a symlink, never blocking on a FIFO put there.
	if names, err := listIn(nil, d.rw.queue); err == nil {
		for _, name := range names {
			if f := strings.SplitN(name, ".", 3); len(f) == 3 && (f[1] == "w" || f[1] == "r") {
				n++
			}
		}
	}
	return n
}
