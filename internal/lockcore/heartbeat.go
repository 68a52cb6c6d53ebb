package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// install makes h the handle's hold and starts its heartbeat.
func (l *Lock) install(h *hold) {
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	l.startHeartbeat(h)
}

// startHeartbeat rewrites h's heartbeat every Heartbeat until stopped or
// lost (H1..H3). A timer rather than a goroutine per hold: nothing runs
// between beats. With ManualBeat the owner of the handle beats (Beat).
func (l *Lock) startHeartbeat(h *hold) {
	if l.cfg.ManualBeat {
		return
	}
	h.beatMu.Lock()
	defer h.beatMu.Unlock()
	h.timer = time.AfterFunc(l.cfg.Heartbeat, func() {
		if l.beatOnce(h) { // (a Stop meanwhile: the timer's next run returns at once)
			h.timer.Reset(l.cfg.Heartbeat)
		}
	})
}

// beatOnce beats h unless its heartbeat was stopped or the hold is lost,
// and reports whether it beat and the hold stands.
func (l *Lock) beatOnce(h *hold) bool {
	h.beatMu.Lock()
	defer h.beatMu.Unlock()
	if h.stopped || h.lostErr != nil {
		return false
	}
	if h.beatWS == nil { // made at the first beat: most holds end before one
		h.beatWS = l.newWaitState()
	}
	err := l.beat(h, h.beatWS)
	if err != nil {
		h.lostErr = err
		close(h.lost)
	}
	if l.cfg.AfterBeat != nil {
		l.cfg.AfterBeat(err) // after the loss is published
	}
	return err == nil
}

// Beat runs one heartbeat of each of the handle's holds now (H1..H3), for
// a handle made with ManualBeat; a hold found lost is published through
// Lost as by the timer's beats. The command's keeper beats itself, right
// after it has seen its hold still at the lock: a beat that found it
// released (dotlock -u, from another process) would decide so under the
// guard, making files after the script was done with the lock.
func (l *Lock) Beat() {
	l.mu.Lock()
	hs := l.holds()
	l.mu.Unlock()
	for _, h := range hs {
		l.beatOnce(h)
	}
}

// holds are the handle's holds, shared and exclusive (a copy). l.mu held.
func (l *Lock) holds() []*hold {
	hs := append([]*hold(nil), l.readers...)
	if l.hold != nil {
		hs = append(hs, l.hold)
	}
	return hs
}

// stopHeartbeat stops h's heartbeat; a beat under way finishes first.
func (l *Lock) stopHeartbeat(h *hold) {
	h.beatMu.Lock()
	defer h.beatMu.Unlock()
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
	}
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
func (l *Lock) beat(h *hold, ws *waitState) error {
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
		if _, err := h.entry.WriteAt(next.HeartbeatLine(), h.owner.HeartbeatOffset()); err != nil {
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
		err := prove(h.lastBeat.Add(l.cfg.StaleAfter / 2))
		if !errors.Is(err, ErrLost) {
			return err
		}
		// Within the lease no one takes a live hold: a record found gone
		// or not ours may be in a guard holder's hands for a moment (an
		// acquirer giving its entry up, B4, a group's change: each moves
		// what is at the path and puts back what is not its own). Decide
		// under the guard, once they are done (model: H1g).
	}
	// H3: after a lapse, prove the hold under the breaker guard, so that
	// no breaker that judged the lease lapsed is still at work.
	err := l.withGuard(context.Background(), ws, prove)
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
