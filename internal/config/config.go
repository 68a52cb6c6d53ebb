// Package config holds a lock's settings, which package dotlock's options
// set and package lockcore reads. It is internal so that the settings —
// test hooks among them — are not part of the public API: users see only
// the opaque dotlock.Option and its With... constructors.
package config

import (
	"time"

	"github.com/dotlock/dotlock/stale"
)

// Defaults. The lease is long enough that a slow network filesystem does not
// make a live holder look dead, short enough that a crashed remote holder is
// replaced within a minute.
const (
	DefaultStaleAfter = 30 * time.Second
	DefaultGrace      = 5 * time.Second
	DefaultPollMin    = time.Millisecond
	DefaultPollMax    = 50 * time.Millisecond
)

// Clock tells the time. Its readings must carry a monotonic reading (as
// time.Now's do): leases are measured with it, never with clocks in records.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config holds a lock's settings.
type Config struct {
	StaleAfter time.Duration // lease of a holder whose liveness cannot be probed
	Heartbeat  time.Duration // how often a holder rewrites its heartbeat
	Grace      time.Duration // how long an empty or partial record counts as being written
	PollMin    time.Duration // first wait between tries
	PollMax    time.Duration // longest wait between tries
	Perm       uint32        // permission bits of the record file (and directory, plus x bits), before the umask
	Sync       *bool         // fsync records; nil: only on network filesystems
	Clock      Clock
	Checker    *stale.Checker

	// OnWait, if set, is called with who is in the way (a
	// *dotlock.LockedError) once a waiter is in line (announced, or
	// queued) and each time that changes; OnBreak when a stale lock is
	// removed.
	OnWait  func(error)
	OnBreak func(victim *stale.Owner, reason string)

	AfterCreate func() error  // test hook: a create whose reply is lost
	Handoff     time.Duration // test hook: the handoff window, if not 0
	AfterBeat   func(error)   // test hook: told each heartbeat's result
	ManualBeat  bool          // no heartbeat timer: the handle's owner calls Beat
}

// The bridge to package dotlock, which sets both when it is loaded (every
// program that makes a lock loads it: New takes its Option). Apply applies
// a dotlock.Option to c; Make wraps f as a dotlock.Option.
var (
	Apply func(opt any, c *Config)
	Make  func(f func(*Config)) any
)

// Fill sets the defaults of what opts left unset.
func (c *Config) Fill() error {
	if c.StaleAfter <= 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = c.StaleAfter / 4
	}
	if c.Grace <= 0 {
		c.Grace = min(DefaultGrace, c.StaleAfter)
	}
	if c.PollMin <= 0 {
		c.PollMin = DefaultPollMin
	}
	if c.PollMax <= 0 {
		c.PollMax = min(DefaultPollMax, max(c.StaleAfter/10, c.PollMin))
	}
	c.PollMax = max(c.PollMax, c.PollMin)
	if c.Perm == 0 {
		c.Perm = 0o666 // less the umask, as open(2) does: no chmod after
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Checker == nil {
		ch, err := stale.NewChecker()
		if err != nil {
			return err
		}
		c.Checker = ch
	}
	return nil
}
