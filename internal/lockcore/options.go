package lockcore

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

// Config holds a lock's settings; Options change it.
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

	// OnWait, if set, is called with who is in the way once a waiter is in
	// line (announced, or queued) and each time that changes; OnBreak when
	// a stale lock is removed.
	OnWait  func(*LockedError)
	OnBreak func(victim *stale.Owner, reason string)

	afterCreate func() error  // test hook: a create whose reply is lost
	handoff     time.Duration // test hook: the handoff window, if not 0
	afterBeat   func(error)   // test hook: told each heartbeat's result
}

// Option changes a Config.
type Option func(*Config)

// WithStaleAfter sets the lease for holders whose process cannot be probed
// (other hosts, other PID namespaces): a holder whose heartbeat has not
// changed for d is taken to be dead. Holders heartbeat every d/4 unless
// WithHeartbeat says otherwise.
func WithStaleAfter(d time.Duration) Option { return func(c *Config) { c.StaleAfter = d } }

// WithHeartbeat sets how often a holder rewrites its heartbeat.
func WithHeartbeat(d time.Duration) Option { return func(c *Config) { c.Heartbeat = d } }

// WithGrace sets how long an empty, partial or corrupt record is taken to be
// in the middle of being written before it counts as abandoned.
func WithGrace(d time.Duration) Option { return func(c *Config) { c.Grace = d } }

// WithPoll sets the shortest and longest wait between tries while blocked.
func WithPoll(min, max time.Duration) Option {
	return func(c *Config) { c.PollMin, c.PollMax = min, max }
}

// WithPerm sets the permission bits of the lock's files (default 0666), and
// of its directories with x added where r is (default 0777). As open(2) and
// mkdir(2) do, the process's umask takes bits away: by default files are
// 0644 under umask 022, and 0664 — writable by a shared group — under 002.
func WithPerm(perm uint32) Option { return func(c *Config) { c.Perm = perm } }

// WithSync forces (true) or forbids (false) fsync of records after writing.
// By default records are synced only on network filesystems, where other
// hosts would not otherwise see them promptly.
func WithSync(sync bool) Option { return func(c *Config) { c.Sync = &sync } }

// WithClock replaces the clock (for tests).
func WithClock(clk Clock) Option { return func(c *Config) { c.Clock = clk } }

// WithChecker replaces the liveness checker (for tests, or a custom host identity).
func WithChecker(ch *stale.Checker) Option { return func(c *Config) { c.Checker = ch } }

// WithOnWait sets a callback told who is in the way while waiting.
func WithOnWait(f func(*LockedError)) Option { return func(c *Config) { c.OnWait = f } }

// WithOnBreak sets a callback told when a stale lock is removed.
func WithOnBreak(f func(victim *stale.Owner, reason string)) Option {
	return func(c *Config) { c.OnBreak = f }
}

// WithCreateHook is for tests: f runs after each successful create; if it
// returns an error the create is treated as having reported that error,
// as when a network filesystem loses the reply to a create that succeeded.
func WithCreateHook(f func() error) Option { return func(c *Config) { c.afterCreate = f } }

func (c *Config) fill() error {
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
