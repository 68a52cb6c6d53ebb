package dotlock_test

import (
	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// Both lock kinds are Lockers.
var (
	_ dotlock.Locker = (*lockfile.Lock)(nil)
	_ dotlock.Locker = (*lockdir.Lock)(nil)
)
