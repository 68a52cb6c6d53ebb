package lockcore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dotlock/dotlock/stale"
)

// The sentinels, shared by lockfile and lockdir so that errors.Is matches
// either package's names.
var (
	ErrLocked  = errors.New("locked")
	ErrNotHeld = errors.New("lock not held")
	ErrLost    = errors.New("lock lost")
	// ErrNotLock: something stands at a lock path (or one of its side
	// paths) that dotlock did not make — a user's file or directory, a
	// symlink, a FIFO. It is reported at once and never touched.
	ErrNotLock = errors.New("not a dotlock lock")
)

// LockedError says who holds a lock that could not be had. It matches
// ErrLocked with errors.Is. It reaches callers wrapped in an *fs.PathError.
type LockedError struct {
	Owners []stale.Owner // the holders in the way; empty when their record could not be read
	Reason string        // why they count as holders (the checker's verdict, or why the record is unreadable)
}

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

// BreakError reports a lock whose holder was judged dead but which could not
// be removed (typically: no permission in a sticky directory, or another
// user's file). It wraps the underlying error.
type BreakError struct {
	Owner  *stale.Owner // nil when the record was unreadable
	Reason string       // why the holder counts as dead
	Err    error
}

func (e *BreakError) Error() string {
	who := "an unreadable record"
	if e.Owner != nil {
		who = e.Owner.String()
	}
	return fmt.Sprintf("stale lock of %s (%s) cannot be removed: %v", who, e.Reason, e.Err)
}

func (e *BreakError) Unwrap() error { return e.Err }

// LostError says why a hold was found lost. It matches ErrLost.
type LostError struct {
	Reason string
}

func (e *LostError) Error() string { return "lock lost: " + e.Reason }

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }
