package dotlock

import (
	"errors"
	"io/fs"
	"time"

	"github.com/dotlock/dotlock/internal/config"
	"github.com/dotlock/dotlock/stale"
)

// Option configures a lock: pass any of the With... options to lockfile.New
// or lockdir.New. Options are values of this package only.
type Option interface {
	apply(*config.Config)
}

type option func(*config.Config)

func (o option) apply(c *config.Config) { o(c) }

func init() {
	config.Apply = func(o any, c *config.Config) { o.(Option).apply(c) }
	config.Make = func(f func(*config.Config)) any { return option(f) }
}

// WithStaleAfter sets the lease for holders whose process cannot be probed
// (other hosts, other PID namespaces): a holder whose heartbeat has not
// changed for d is taken to be dead (default 30 s). Holders heartbeat every
// d/4 unless WithHeartbeat says otherwise. Give every user of a lock the
// same value.
func WithStaleAfter(d time.Duration) Option {
	return option(func(c *config.Config) { c.StaleAfter = d })
}

// WithHeartbeat sets how often a holder rewrites its heartbeat (default:
// a quarter of the lease). Keep it well under half the lease: a holder
// whose heartbeat stays still for the lease loses its lock to other hosts.
func WithHeartbeat(d time.Duration) Option {
	return option(func(c *config.Config) { c.Heartbeat = d })
}

// WithGrace sets how long an empty or partial record is taken to be in the
// middle of being written before it counts as abandoned (default 5 s, or
// the lease if that is shorter).
func WithGrace(d time.Duration) Option {
	return option(func(c *config.Config) { c.Grace = d })
}

// WithPoll sets the shortest and longest wait between tries while blocked
// (default 1 ms, and 50 ms or a tenth of the lease if that is shorter, but
// not under lo): waiters back off, with jitter, from lo to hi. A lock
// file's waiter on a network filesystem backs off to 10 ms at most, as
// most of its tries there are one exclusive create; and of the waiters of
// one host for one lock file only one tries at that pace, the others
// once per heartbeat period or hi (docs/PROTOCOL.md, W6).
func WithPoll(lo, hi time.Duration) Option {
	return option(func(c *config.Config) { c.PollMin, c.PollMax = lo, hi })
}

// WithPerm sets the permission bits of the lock's files (default 0666),
// and of its directories with x added where r is (default 0777). As
// open(2) and mkdir(2) do, the process's umask takes bits away: by default
// files are 0644 under umask 022, and 0664 — writable by a shared group —
// under 002.
func WithPerm(perm fs.FileMode) Option {
	return option(func(c *config.Config) { c.Perm = uint32(perm.Perm()) })
}

// WithSync forces (true) or forbids (false) fsync of records after writing.
// By default records are synced only on network filesystems, where other
// hosts would not otherwise see them promptly.
func WithSync(sync bool) Option {
	return option(func(c *config.Config) { c.Sync = &sync })
}

// WithOnWait sets a callback told who is in the way once a waiter is in
// line, and each time that changes.
func WithOnWait(f func(*LockedError)) Option {
	return option(func(c *config.Config) {
		c.OnWait = func(err error) {
			var le *LockedError
			if errors.As(err, &le) {
				f(le)
			}
		}
	})
}

// WithOnBreak sets a callback told when a dead holder's lock is removed:
// whose (nil if its record was unreadable), and why it counted as dead.
func WithOnBreak(f func(victim *stale.Owner, reason string)) Option {
	return option(func(c *config.Config) { c.OnBreak = f })
}
