package lockcore

import (
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/config"
	"github.com/dotlock/dotlock/stale"
)

// The settings live in package config, the options in package dotlock;
// the names here are the engine's own (and its tests').
type (
	Config = config.Config
	Clock  = config.Clock
	Option = dotlock.Option
)

// Defaults.
const (
	DefaultStaleAfter = config.DefaultStaleAfter
	DefaultGrace      = config.DefaultGrace
	DefaultPollMin    = config.DefaultPollMin
	DefaultPollMax    = config.DefaultPollMax
)

// option makes f a dotlock.Option (for the engine's own and test options).
func option(f func(*Config)) Option { return config.Make(f).(Option) }

// configure is the Config that opts make, defaults filled in.
func configure(opts []Option) (Config, error) {
	var cfg Config
	for _, o := range opts {
		if o != nil {
			config.Apply(o, &cfg)
		}
	}
	return cfg, cfg.Fill()
}

// The public options, by their engine names (tests use these).
var (
	WithStaleAfter = dotlock.WithStaleAfter
	WithHeartbeat  = dotlock.WithHeartbeat
	WithGrace      = dotlock.WithGrace
	WithPoll       = dotlock.WithPoll
	WithSync       = dotlock.WithSync
	WithOnWait     = dotlock.WithOnWait
	WithOnBreak    = dotlock.WithOnBreak
)

// WithPerm is dotlock.WithPerm with the bits as a number.
func WithPerm(perm uint32) Option { return option(func(c *Config) { c.Perm = perm }) }

// WithClock replaces the clock (tests).
func WithClock(clk Clock) Option { return option(func(c *Config) { c.Clock = clk }) }

// WithChecker replaces the liveness checker (tests, and the CLI's
// lock --pid, which judges on behalf of another process).
func WithChecker(ch *stale.Checker) Option { return option(func(c *Config) { c.Checker = ch }) }

// WithCreateHook is for tests: f runs after each successful create; if it
// returns an error the create is treated as having reported that error,
// as when a network filesystem loses the reply to a create that succeeded.
func WithCreateHook(f func() error) Option {
	return option(func(c *Config) { c.AfterCreate = f })
}

// WithHandoff (tests) sets the handoff window (W4, W7).
func WithHandoff(d time.Duration) Option { return option(func(c *Config) { c.Handoff = d }) }

// WithAfterBeat (tests) has f told each heartbeat's result: nil, or the
// error (ErrLost) that ends the hold.
func WithAfterBeat(f func(error)) Option { return option(func(c *Config) { c.AfterBeat = f }) }

// WithManualHeartbeat makes a handle without a heartbeat timer: its owner
// beats with Beat, at least every Heartbeat (the command's keeper).
func WithManualHeartbeat() Option { return option(func(c *Config) { c.ManualBeat = true }) }
