package dotlock

import (
	"context"

	"github.com/dotlock/dotlock/internal/handle"
	"github.com/dotlock/dotlock/stale"
)

func init() {
	handle.Mutex = func(e handle.Engine) any { return &Mutex{e} }
	handle.RWMutex = func(e handle.Engine) any { return &RWMutex{Mutex{e}} }
}

// Mutex is a handle on a lock file, held exclusively (lockfile.New). It is
// safe for concurrent use: goroutines calling Lock on a held handle wait,
// as with sync.Mutex, and two handles on one path exclude each other as
// two processes do. The zero Mutex is not usable.
type Mutex struct{ e handle.Engine }

// TryLock takes the lock if it is free or its holder is proven dead, and
// otherwise returns an error matching ErrLocked that names the holder (a
// handle that holds the lock already gets ErrLocked too). A holder on
// another host is proven dead by its record staying unchanged for the
// lease: one call cannot see that, but the handle's calls watch it
// together, so TryLock repeated for longer than the lease takes a lock
// whose holder stopped heartbeating. It waits for
// others at most 1 s in all: a breaker guard (the path + ".break") held
// that long — a break or handoff under way, or a guard left behind — is
// reported as ErrLocked naming it. Its own filesystem operations take what
// they take. Other errors: ErrNotLock, a *BreakError (a dead holder's
// lock that could not be removed), a *ForeignError (another user's file in
// the way), and the filesystem's.
func (m *Mutex) TryLock() error { return m.e.TryLock() }

// Lock waits, with backoff and jitter, until it holds the lock, or until ctx
// is done and then returns ctx.Err() unchanged. It fails at once as
// TryLock does for anything but a live holder — except, on a network
// filesystem, while the server cannot be reached (it waits) and for a
// path holding something not a lock's (ErrNotLock once that has stood for
// 2 s: a client may show one for a moment). On a handle that holds the
// lock already, it waits for this handle's Unlock.
func (m *Mutex) Lock(ctx context.Context) error { return m.e.Lock(ctx) }

// Unlock releases the lock: ErrNotHeld if this handle holds nothing, ErrLost
// if the record at the path is no longer this hold's (it is left alone).
// It takes a few filesystem operations and no context; at worst, a
// release failing with transient errors is retried for up to the lease
// (WithStaleAfter; at least twice the grace period), or 4 leases while a
// network filesystem's server cannot be reached, and one whose lease
// lapsed first waits for a breaker guard held by others, up to 4 leases
// for one left behind: 2 min with the defaults.
func (m *Mutex) Unlock() error { return m.e.Unlock() }

// Token returns the fencing token of the current hold (0 if none): greater
// than every earlier hold's of this path, across crashes and takeovers.
func (m *Mutex) Token() uint64 { return m.e.Token() }

// Lost returns a channel closed when the current hold is found lost (at a
// heartbeat). If nothing is held — before the first hold, and after
// Unlock — the channel is already closed: a worker that checks it before
// acting on what the lock protects stops. A hold's channel is not closed
// by Unlock, only by a loss.
func (m *Mutex) Lost() <-chan struct{} { return m.e.Lost() }

// Owner returns the record of whoever holds the path now; with no holder,
// an error matching fs.ErrNotExist.
func (m *Mutex) Owner() (stale.Owner, error) { return m.e.Owner() }

// Path returns the absolute path of the lock.
func (m *Mutex) Path() string { return m.e.Path() }

// RWMutex is a handle on a lock directory (lockdir.New), held exclusively
// by one writer (Lock, as Mutex's) or shared by any number of readers
// together (RLock), through the same handle and across processes and
// hosts. A lock file cannot be held shared: that takes one record per
// reader, which a lock directory holds.
//
// Turns are fair: once a writer waits, new readers queue behind it; when a
// writer leaves, every reader waiting then goes in together, before the
// next writer. Every shared hold has its own record, heartbeat and fencing
// token, and a dead reader is reclaimed like a dead writer.
//
// Each RLock is a hold of its own, even on one handle, and RUnlock, Token
// and Lost concern the newest one: goroutines that read concurrently and
// need their own hold's token or loss notice take a handle each. As with
// sync.RWMutex, a goroutine that holds a shared hold and then calls Lock
// on the lock it reads deadlocks. The zero RWMutex is not usable.
type RWMutex struct{ m Mutex }

// TryLock takes the exclusive hold as Mutex.TryLock does; readers in the
// group, or a writer waiting, count as holders.
func (m *RWMutex) TryLock() error { return m.m.TryLock() }

// Lock waits for the exclusive hold as Mutex.Lock does: until the writer
// and every reader have left.
func (m *RWMutex) Lock(ctx context.Context) error { return m.m.Lock(ctx) }

// Unlock releases the exclusive hold, as Mutex.Unlock does.
func (m *RWMutex) Unlock() error { return m.m.Unlock() }

// Token returns the fencing token of the newest hold of this handle,
// exclusive or shared (0 if none).
func (m *RWMutex) Token() uint64 { return m.m.Token() }

// Lost returns a channel closed when the newest hold of this handle is
// found lost; already closed if nothing is held (see Mutex.Lost).
func (m *RWMutex) Lost() <-chan struct{} { return m.m.Lost() }

// Owner returns the record at the lock directory now: the writer's, or,
// while readers hold it, the group's anchor (Mode stale.ModeShared; its
// PID and host name no reader: see Readers). With no holder, an error
// matching fs.ErrNotExist.
func (m *RWMutex) Owner() (stale.Owner, error) { return m.m.Owner() }

// Path returns the absolute path of the lock directory.
func (m *RWMutex) Path() string { return m.m.Path() }

// RLock waits for a shared hold (queueing behind waiting writers) or until
// ctx is done, and then returns ctx.Err() unchanged.
func (m *RWMutex) RLock(ctx context.Context) error { return m.m.e.RLock(ctx) }

// TryRLock takes a shared hold if it can be had now, or returns an error
// matching ErrLocked naming the writer that holds or waits. It waits for
// others at most 1 s, as TryLock does.
func (m *RWMutex) TryRLock() error { return m.m.e.TryRLock() }

// RUnlock releases the newest shared hold of this handle (the one whose
// token Token reports); ErrNotHeld if none. It changes the group under the
// breaker guard, so it may wait for a guard as Unlock does after a lapse.
func (m *RWMutex) RUnlock() error { return m.m.e.RUnlock() }

// Readers returns the records of the shared holders now (none if the lock
// directory does not exist); records that cannot be read are left out.
func (m *RWMutex) Readers() ([]stale.Owner, error) { return m.m.e.Readers() }
