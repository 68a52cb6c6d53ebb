package lockcore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"time"
)

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
// empty one that stands for the grace period) — or, while a network
// filesystem's server cannot be reached, for up to the guard's lease
// (4×StaleAfter: 2 min by default, which outlasts a server's restart and
// NFS's 90 s grace period; measured: an SMB client answered EAGAIN for
// several seconds while smbd restarted) — and returns its first error if
// it never succeeds (a later ErrLost may be the work of an earlier try
// whose reply was lost). It is for cleanups that must not be given up at
// the first transient error: a record left at the path names this
// process, which lives on, so no one on this host would ever break it.
func (l *Lock) retry(fn func() error) error {
	first := fn()
	if first == nil || permanent(first) {
		return first
	}
	// Backoff from 1 ms, whatever PollMin says (it may be long, for a
	// holder), to at most PollMax or 100 ms.
	delay, hi := time.Millisecond, min(max(l.cfg.PollMax, time.Millisecond), 100*time.Millisecond)
	for start, err := time.Now(), first; time.Since(start) < l.retryFor(err); {
		time.Sleep(delay/2 + rand.N(delay/2+1))
		delay = min(2*delay, hi)
		if err = fn(); err == nil {
			return nil
		}
		if permanent(err) {
			break
		}
	}
	return first
}

// retryFor is how long retry goes on after a try failed with err.
func (l *Lock) retryFor(err error) time.Duration {
	if l.transient(err) {
		return l.guardLease()
	}
	return max(l.cfg.StaleAfter, 2*l.cfg.Grace)
}

// permanent reports errors a retry cannot mend: the hold is lost, the
// file is another user's (ForeignError), or not dotlock's (ErrNotLock).
func permanent(err error) bool {
	return errors.Is(err, ErrLost) || foreignErr(err) || errors.Is(err, ErrNotLock)
}
