package lockcore

import "github.com/dotlock/dotlock"

// The errors are package dotlock's, one definition for both lock packages;
// these are the engine's names for them.
var (
	ErrLocked  = dotlock.ErrLocked
	ErrNotHeld = dotlock.ErrNotHeld
	ErrLost    = dotlock.ErrLost
	ErrNotLock = dotlock.ErrNotLock
)

type (
	LockedError  = dotlock.LockedError
	LostError    = dotlock.LostError
	BreakError   = dotlock.BreakError
	ForeignError = dotlock.ForeignError
)
