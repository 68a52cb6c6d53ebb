package stale

import (
	"fmt"
	"time"
)

// Identity names the machine and PID namespace a process runs in. Two
// records with equal identities were written where one process table holds
// both PIDs.
type Identity struct {
	Host   string
	BootID string
	PIDNS  string
}

// Of returns the identity a record was written under.
func Of(o Owner) Identity { return Identity{Host: o.Host, BootID: o.BootID, PIDNS: o.PIDNS} }

// Process is what a ProcessTable knows of one PID.
type Process struct {
	Exists  bool
	Zombie  bool   // exited, not yet reaped: it holds nothing
	StartID string // same meaning as Owner.StartID; empty if unknown
	Started time.Time
}

// ProcessTable looks up processes on this host. A PID that exists but may
// not be inspected (EPERM) must be reported as existing.
type ProcessTable interface {
	Lookup(pid int) (Process, error)
}

// Verdict is a Checker's judgement of a holder.
type Verdict int

const (
	// Alive: the holder is on this host and its process runs.
	Alive Verdict = iota
	// Dead: the holder is on this host (or was, before a reboot) and is gone.
	Dead
	// Remote: the holder is on another host or in another PID namespace;
	// only its heartbeat can tell (see Observation).
	Remote
)

// String is "alive", "dead" or "remote".
func (v Verdict) String() string {
	switch v {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	case Remote:
		return "remote"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Judgement is a verdict with its reason, for people.
type Judgement struct {
	Verdict Verdict
	Reason  string
}

// Checker decides whether a record's holder is alive. Its fields are
// injected so that tests can fake the host and its processes.
type Checker struct {
	Local     Identity
	Processes ProcessTable
}

// NewChecker returns a Checker for this host and its real process table.
func NewChecker() (*Checker, error) {
	id, err := LocalIdentity()
	if err != nil {
		return nil, err
	}
	return &Checker{Local: id, Processes: SystemProcesses{}}, nil
}

// Judge decides o's holder's fate from the host's point of view. It never
// answers Dead for a process it could not prove gone: lookup errors yield
// Alive.
func (c *Checker) Judge(o Owner) Judgement {
	// Records hold these fields as Marshal cleaned them: compare like with
	// like, or a host name with a control character would make every local
	// record look remote (or a boot ID, rebooted).
	local := Identity{Host: clean(c.Local.Host), BootID: clean(c.Local.BootID), PIDNS: clean(c.Local.PIDNS)}
	switch {
	case o.Host != local.Host:
		return Judgement{Remote, fmt.Sprintf("held on another host (%s)", o.Host)}
	case o.BootID != local.BootID:
		return Judgement{Dead, fmt.Sprintf("host %s rebooted since (boot %s, now %s)", o.Host, short(o.BootID), short(local.BootID))}
	case o.PIDNS != local.PIDNS:
		return Judgement{Remote, fmt.Sprintf("held in another PID namespace (%s) on this host", o.PIDNS)}
	}
	p, err := c.Processes.Lookup(o.PID)
	switch {
	case err != nil:
		return Judgement{Alive, fmt.Sprintf("pid %d: cannot look it up (%v); assuming alive", o.PID, err)}
	case !p.Exists:
		return Judgement{Dead, fmt.Sprintf("no process with pid %d", o.PID)}
	case p.Zombie:
		return Judgement{Dead, fmt.Sprintf("pid %d has exited (zombie)", o.PID)}
	case o.StartID != "" && p.StartID != "" && o.StartID != p.StartID:
		return Judgement{Dead, fmt.Sprintf("pid %d was reused (started %s, record says %s)", o.PID, p.StartID, o.StartID)}
	}
	return Judgement{Alive, fmt.Sprintf("pid %d is running", o.PID)}
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// Observation tracks how long a record has stayed the same, measured with
// the observer's own monotonic clock, never with the timestamps inside the
// record — so clock skew between hosts cannot make a live lease look lapsed.
// The zero value is ready to use; it is not safe for concurrent use.
type Observation struct {
	key   string
	since time.Time
}

// See records that the observed record (identified by key, e.g. its bytes)
// was seen at now, and returns how long it has been unchanged. A changed key
// restarts the clock. now must carry a monotonic reading (time.Now does).
func (ob *Observation) See(key string, now time.Time) time.Duration {
	if key != ob.key || ob.since.IsZero() {
		ob.key, ob.since = key, now
		return 0
	}
	return now.Sub(ob.since)
}

// Reset forgets what was observed.
func (ob *Observation) Reset() { *ob = Observation{} }
