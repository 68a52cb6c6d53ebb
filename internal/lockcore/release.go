package lockcore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// Unlock releases the lock. It returns an error matching ErrNotHeld if the
// handle does not hold it, and one matching ErrLost if the record at the
// path is no longer this hold's (the lock stays with its new holder).
//
// It takes a few filesystem operations. Its worst case: a release that
// fails with a transient error (EIO from a network filesystem, say) is
// tried again for up to StaleAfter (at least twice Grace), and for up to
// 4×StaleAfter while the filesystem's server cannot be reached, since a
// record left behind would name this live process, which no one on this
// host breaks; and a release made under the breaker guard (after the hold's
// lease lapsed; always for RUnlock) first waits for a guard held by
// others, up to the guard's lease (4×StaleAfter) for one left behind by a
// breaker that died on another host. With the defaults: 30 s (2 min with
// the server unreachable), plus 2 min for such a guard.
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
		at, _ = idAt(h.id, l.kind.ownerPath())
	}
	h.entry.Close() // before moving it: Windows cannot rename an open file
	select {
	case <-h.lost:
		return h.lostErr
	default:
	}
	// A release that fails for a transient error is tried again: given up,
	// it would leave a record naming this live process, which no one on
	// this host would break.
	r := &releaser{l: l, h: h, ws: l.newWaitState(), proven: at}
	if !h.shared {
		r.o = openOpDir(l.store.Path())
		defer r.o.close()
	}
	r.st = l.store.at(r.o)
	return l.retry(r.try)
}

// releaser is one release, across its tries.
type releaser struct {
	l      *Lock
	h      *hold
	ws     *waitState // across tries: a guard seen before is not new
	proven bool       // R1 proved the entry ours by its inode (first try only)
	failed bool       // a try failed: its R2 may have moved the record, its reply lost
	left   bool       // a shared hold's record has left; what follows (S5) failed
	o      *opDir     // the lock's directory: an exclusive hold's own, or R3's guard section's (nil: by name)
	st     Store      // the store, reached through o
}

// read is the hold's read of its record, through r.o.
func (r *releaser) read() ([]byte, error) {
	if r.h.shared {
		return readIn(r.o, filepath.Dir(r.h.record), filepath.Base(r.h.record))
	}
	return r.st.Read()
}

// retireRecord is the hold's retire, through r.o.
func (r *releaser) retireRecord(check func([]byte) bool) (bool, error) {
	if r.h.shared {
		return retireFile(r.o, r.h.record, check)
	}
	return r.st.Retire(true, check)
}

// try is one try at the release.
func (r *releaser) try() error {
	l, h := r.l, r.h
	if r.left {
		// Only the group's change is left to do (the record is gone: a
		// check would find it lost).
		return l.rw.under(context.Background(), r.ws, func(s rwIn) error { return s.readerLeft() })
	}
	err := errGuardBusy
	if now := l.cfg.Clock.Now(); !h.shared && !l.lapsed(h, now) {
		deadline := h.lastBeat.Add(l.cfg.StaleAfter / 2)
		if r.proven {
			err = r.retire(deadline)
		} else {
			err = r.checkAndRetire(deadline) // reads the record, to name who has it if not us
		}
		if errors.Is(err, ErrLost) {
			// Within the lease no one takes a live hold; a record found
			// gone or not ours may be in a guard holder's hands for a
			// moment (an acquirer giving its entry up, B4, a group's
			// change: each moves what is at the path, reads it, and puts
			// back what is not its own). Decide under the guard, once they
			// are done (model: R1g).
			err = errGuardBusy
		}
	}
	r.proven = false
	if errors.Is(err, errGuardBusy) {
		// R3: after a lapse, and always for a shared hold (a change of
		// the holder set), release under the guard, through the guard
		// section's directory (the descriptor r.o held given back first).
		r.o.close()
		err = l.underGuardIn(context.Background(), r.ws, r.checkAndRetireIn)
		if h.shared && errors.Is(err, errNoGuard) {
			err = r.leaveWithoutGuard(err)
		}
	}
	if err == nil && !h.shared {
		l.kind.handOn(r.o)
	}
	r.failed = r.failed || err != nil
	return r.withLapse(err)
}

// checkAndRetire is R1 then R2: the record at the path must be ours.
func (r *releaser) checkAndRetire(deadline time.Time) error {
	data, err := r.read()
	o, perr := stale.Parse(data)
	if err == nil && perr == nil && o.UUID == r.h.owner.UUID {
		return r.retire(deadline)
	}
	if r.failed && r.retiredBefore() {
		return nil
	}
	if undecidedGone(err) && !r.l.lapsed(r.h, r.l.cfg.Clock.Now()) {
		// An SMB client's EINVAL: it holds an older file once at this
		// name. Within the lease no one may have taken ours: look again
		// (past it, a takeover is what EINVAL most likely means).
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &LostError{Reason: "the lock was removed (" + err.Error() + ")"}
	}
	if err != nil {
		return notOurs(err)
	}
	return lostTo(o, perr)
}

// checkAndRetireIn is checkAndRetire in a guard section (R3), through the
// section's directory o: the release's calls from now on go through it,
// or by name once it is closed.
func (r *releaser) checkAndRetireIn(deadline time.Time, o *opDir) error {
	r.o = o
	if !r.h.shared {
		r.st = r.l.store.at(o)
	}
	return r.checkAndRetire(deadline)
}

// leaveWithoutGuard retires a shared hold's own record when its guard
// section could not begin (err, errNoGuard): a record left would name this
// live process, holding the lock while it lives, after the file at P.break
// is gone. The group's own change (S5) is left to whoever next holds the
// guard: a group without readers is dissolved then (S6).
func (r *releaser) leaveWithoutGuard(err error) error {
	ok, rerr := retireFile(nil, r.h.record, func(m []byte) bool {
		o, perr := stale.Parse(m)
		return perr == nil && o.UUID == r.h.owner.UUID
	})
	if rerr != nil || !ok {
		return err
	}
	r.left = true
	return nil
}

// withLapse adds to a LostError how long before the hold last proved
// itself, against the lease: a lapse explains the loss (its heartbeat
// could not reach the filesystem in time); none points at the filesystem.
func (r *releaser) withLapse(err error) error {
	var le *LostError
	if errors.As(err, &le) {
		ago := r.l.cfg.Clock.Now().Sub(r.h.lastBeat).Round(time.Millisecond)
		le.Reason += fmt.Sprintf(" (the hold last proved itself %v before; lease %v)", ago, r.l.cfg.StaleAfter)
	}
	return err
}

// retiredBefore reports whether an earlier try's R2 did move the record
// to the last-record slot though it failed: its reply was lost (P6), or
// an SMB client answered EAGAIN while reconnecting. The slot holding our
// record says so (a successor's release would have replaced it with a
// higher token). A lock directory may be left empty then: the next
// acquirer frees it after the grace period (P5), under the guard; removing
// it here, without the guard, could remove a successor's new one.
func (r *releaser) retiredBefore() bool {
	if r.h.shared {
		return false // moved to a unique name, which R2 itself looks for
	}
	data, err := r.st.ReadLast()
	if err != nil {
		return false
	}
	o, err := stale.Parse(data)
	return err == nil && o.UUID == r.h.owner.UUID
}

// retire is R2: move the record to the last-record slot (publishing the
// token and freeing the path in one step). R1 has just proved it ours, and
// only a breaker holding the guard could take it away — which needs a
// lapse, and a lapsed release holds the guard itself. But act only by
// the deadline: a pause after the lapse check (or in R1) may have let a
// breaker judge the lease lapsed, and retiring then could move a
// successor's record, or lose the token the breaker just published
// (model: R1). Then come round under the guard.
func (r *releaser) retire(deadline time.Time) error {
	if r.l.cfg.Clock.Now().After(deadline) {
		return errGuardBusy
	}
	ok, err := r.retireRecord(nil)
	if err := doneUnlessLeft(ok, err); err != nil {
		return err
	}
	if !ok {
		return &LostError{Reason: "the lock changed hands while being released"}
	}
	if r.h.shared {
		r.left = true
		return r.l.rw.in(r.o).readerLeft()
	}
	return nil
}
