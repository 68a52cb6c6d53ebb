package dotlock

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dotlock/dotlock/stale"
)

// The sentinels, one definition for both lock packages.
var (
	// ErrLocked: the lock is held by someone alive (or not proven dead).
	// The error wraps a *LockedError naming them.
	ErrLocked = errors.New("locked")
	// ErrNotHeld: Unlock on a handle that holds nothing.
	ErrNotHeld = errors.New("lock not held")
	// ErrLost: the hold's record at the lock path was replaced or
	// removed — by a holder that took over after the lease lapsed, by a
	// break, or by a person — and whatever stands there now was left
	// alone. The error wraps a *LostError saying how.
	ErrLost = errors.New("lock lost")
	// ErrNotLock: something dotlock did not make stands at the lock path,
	// or one of its side paths: a user's file or directory, a symlink, a
	// FIFO. It is reported at once and never touched.
	ErrNotLock = errors.New("not a dotlock lock")
)

// LockedError says who holds a lock that could not be had, and why they
// count as holders. It matches ErrLocked with errors.Is.
type LockedError struct {
	Owners []stale.Owner // the holders in the way; empty when their record could not be read
	Cause  Cause         // why, as a value to branch on
	Reason string        // why, for people (the checker's verdict, or why the record is unreadable)
}

// Cause is why a lock could not be had (LockedError.Cause).
type Cause int

const (
	// HeldAlive means the holder runs on this host (its PID, with the recorded
	// start time); it keeps the lock however old its record.
	HeldAlive Cause = iota + 1
	// HeldWithinLease means the holder runs on another host (or in another PID
	// namespace), and its heartbeat has moved within the lease.
	HeldWithinLease
	// BeingWritten means the record is empty or partial, and has been for less
	// than the grace period (a holder may be writing it).
	BeingWritten
	// NewerFormat means the record is of a later format version: never judged.
	NewerFormat
	// WaitersQueued means others wait for the lock in its queue (lock
	// directories), and a newcomer does not pass them.
	WaitersQueued
	// HeldByThisHandle means this handle holds the lock already.
	HeldByThisHandle
	// LastUnreadable means the last hold's record cannot be read yet, so no
	// fencing token can be issued (a stale attribute cache, say).
	LastUnreadable
	// Contended means others took and released the lock while this call tried.
	Contended
	// GuardHeld means a break or a handoff was under way (the breaker
	// guard stayed held) for as long as a TryLock waits.
	GuardHeld
	// AllSlotsHeld means every slot of a semaphore is held (Owners names
	// their holders).
	AllSlotsHeld
	// Unreachable means the network filesystem's client could not reach
	// its server (Reason says how): Lock tries again until its context is
	// done.
	Unreachable
)

var causeNames = [...]string{"", "held alive", "held within lease", "being written", "newer format",
	"waiters queued", "held by this handle", "last record unreadable", "contended", "guard held", "all slots held",
	"server unreachable"}

// String names the cause in a few words, as the CLI prints it.
func (c Cause) String() string {
	if c > 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

// Error says who holds the lock, and why the caller may not take it.
func (e *LockedError) Error() string {
	var b strings.Builder
	b.WriteString("locked")
	for i, o := range e.Owners {
		if i == 0 {
			b.WriteString(" by ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(o.String())
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LostError says why a hold was found lost. It matches ErrLost.
type LostError struct {
	Reason string
}

// Error says why the hold was lost.
func (e *LostError) Error() string { return "lock lost: " + e.Reason }

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }

// BreakError reports a lock whose holder was judged dead but which could not
// be removed (typically: no permission in a sticky directory, or another
// user's file). It wraps the cause.
type BreakError struct {
	Owner  *stale.Owner // nil when the record was unreadable
	Reason string       // why the holder counts as dead
	Err    error
}

// Error names the stale holder and why the break failed.
func (e *BreakError) Error() string {
	who := "an unreadable record"
	if e.Owner != nil {
		who = e.Owner.String()
	}
	return fmt.Sprintf("stale lock of %s (%s) cannot be removed: %v", who, e.Reason, e.Err)
}

// Unwrap returns the filesystem error that stopped the break.
func (e *BreakError) Unwrap() error { return e.Err }

// ForeignError says that a file dotlock must move or remove belongs to
// another user who alone (with root) may remove it: in a sticky directory
// (/tmp), or one this user cannot write. It unwraps to the system's error,
// which matches fs.ErrPermission.
type ForeignError struct {
	Name string // the file
	UID  int    // its owner
	User string // the owner's name, "" if unknown here
	Err  error
}

// Error names the file and its owner, and whom to ask.
func (e *ForeignError) Error() string {
	return fmt.Sprintf("%v: %s belongs to %s; only that user or root may remove it (ask them to)", e.Err, e.Name, userName(e.UID, e.User))
}

// Unwrap returns the filesystem error (EPERM, EACCES).
func (e *ForeignError) Unwrap() error { return e.Err }

// userName is "user NAME (uid N)", or "uid N" when the name is unknown:
// how dotlock names the owner of a file in its errors.
func userName(uid int, name string) string {
	if name == "" {
		return "uid " + strconv.Itoa(uid)
	}
	return fmt.Sprintf("user %s (uid %d)", name, uid)
}
