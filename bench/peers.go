// Package bench compares dotlock with the locks people use today: the raw
// primitives it is built on, Go peers (gofrs/flock, nightlyone/lockfile,
// go-internal's lockedfile), and — as whole processes in their own language
// — Node's proper-lockfile, Python's filelock and the flock(1),
// dotlockfile(1) and lockfile(1) commands.
//
// This file is the tiny interface every in-process Go peer is driven
// through, shared by the testing.B benchmarks (bench_test.go) and the
// driver (cmd/bench) that writes RESULTS.md.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/nightlyone/lockfile"
	"github.com/rogpeppe/go-internal/lockedfile"
	"golang.org/x/sys/unix"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	dlockfile "github.com/dotlock/dotlock/lockfile"
	"github.com/dotlock/dotlock/semaphore"
	"github.com/dotlock/dotlock/stale"
)

// Locker is one handle on one lock path. Lock blocks until held (a peer
// that can only try is polled, see Settings.Poll); Unlock releases.
type Locker interface {
	Lock() error
	Unlock() error
}

// Settings tune a peer. The zero value means the peer's defaults.
type Settings struct {
	Poll       time.Duration // polling peers: wait between tries; dotlock: WithPoll(Poll, PollMax)
	PollMax    time.Duration // dotlock: longest wait between tries
	StaleAfter time.Duration // dotlock: WithStaleAfter
	Slots      int           // dotlock-semaphore: how many slots
}

// Peer makes Lockers for lock paths.
type Peer struct {
	Name    string
	About   string // what one Lock+Unlock does
	Polling bool   // waiters poll (their best setting is looked for), rather than block in the kernel
	// LocalOnly: measured on local filesystems only (what it does is
	// what dotlock does there, not on a network filesystem).
	LocalOnly bool
	New       func(path string, s Settings) (Locker, error)
}

// Record is a record of the size dotlock writes (stale.Self padded to 1024
// bytes): the raw floors write as much.
var Record = func() []byte {
	o, err := stale.Self(1, stale.ModeExclusive, time.Now())
	if err != nil {
		panic(err)
	}
	return o.Marshal()
}()

// Peers are the in-process Go peers, by name. Names are used on command
// lines and in RESULTS.md.
var Peers = map[string]Peer{
	"raw-excl": {Name: "raw-excl", Polling: true,
		About: "floor: open(O_CREAT|O_EXCL) + write 1024-byte record + close; unlink",
		New: func(p string, s Settings) (Locker, error) {
			return &rawExcl{path: p, poll: pollOr(s, time.Millisecond)}, nil
		}},
	"raw-excl-sync": {Name: "raw-excl-sync", Polling: true,
		About: "raw-excl with an fsync of the record before close (what dotlock does on network filesystems)",
		New: func(p string, s Settings) (Locker, error) {
			return &rawExcl{path: p, poll: pollOr(s, time.Millisecond), sync: true}, nil
		}},
	"raw-excl-open": {Name: "raw-excl-open", Polling: true,
		About: "raw-excl that keeps its descriptor open while held, closing it before the unlink (as dotlock keeps its entry open for the heartbeat)",
		New: func(p string, s Settings) (Locker, error) {
			return &rawExcl{path: p, poll: pollOr(s, time.Millisecond), keep: true}, nil
		}},
	"raw-mkdir": {Name: "raw-mkdir", Polling: true,
		About: "floor: mkdir + create/write/close owner record; unlink + rmdir",
		New: func(p string, s Settings) (Locker, error) {
			return &rawMkdir{path: p, poll: pollOr(s, time.Millisecond)}, nil
		}},
	"flock": {Name: "flock",
		About: "ceiling: flock(LOCK_EX)/flock(LOCK_UN) on a file kept open (kernel lock; local to one host)",
		New:   newFlock},
	"dotlock-lockfile": {Name: "dotlock-lockfile",
		About: "dotlock lockfile.New: Lock/Unlock (O_EXCL file)",
		New: func(p string, s Settings) (Locker, error) {
			l, err := dlockfile.New(p, dotlockOpts(s)...)
			if err != nil {
				return nil, err
			}
			return ctxLocker{l.Lock, l.Unlock}, nil
		}},
	"dotlock-lockdir": {Name: "dotlock-lockdir",
		About: "dotlock lockdir.New: Lock/Unlock (mkdir)",
		New: func(p string, s Settings) (Locker, error) {
			l, err := lockdir.New(p, dotlockOpts(s)...)
			if err != nil {
				return nil, err
			}
			return ctxLocker{l.Lock, l.Unlock}, nil
		}},
	"dotlock-semaphore": {Name: "dotlock-semaphore",
		About: "dotlock semaphore.New (1 slot unless slots=N): Acquire/Release",
		New: func(p string, s Settings) (Locker, error) {
			sem, err := semaphore.New(p, max(1, s.Slots), dotlockOpts(s)...)
			if err != nil {
				return nil, err
			}
			return &slotLocker{sem: sem}, nil
		}},
	"dotlock-rw-shared": {Name: "dotlock-rw-shared",
		About: "dotlock lockdir.New: RLock/RUnlock (a shared group of one reader)",
		New: func(p string, s Settings) (Locker, error) {
			l, err := lockdir.New(p, dotlockOpts(s)...)
			if err != nil {
				return nil, err
			}
			return ctxLocker{l.RLock, l.RUnlock}, nil
		}},
	"dotlock-rw-exclusive": {Name: "dotlock-rw-exclusive",
		About: "dotlock lockdir.New: Lock/Unlock after shared holds were used on the path",
		New: func(p string, s Settings) (Locker, error) {
			l, err := lockdir.New(p, dotlockOpts(s)...)
			if err != nil {
				return nil, err
			}
			return ctxLocker{l.Lock, l.Unlock}, nil
		}},
	"gofrs-flock": {Name: "gofrs-flock",
		About: "github.com/gofrs/flock v0.13.2: Lock (open + flock LOCK_EX) / Unlock (LOCK_UN + close)",
		New: func(p string, s Settings) (Locker, error) {
			return flock.New(p), nil
		}},
	"gofrs-flock-shared": {Name: "gofrs-flock-shared",
		About: "github.com/gofrs/flock v0.13.2: RLock (open + flock LOCK_SH) / Unlock",
		New: func(p string, s Settings) (Locker, error) {
			f := flock.New(p)
			return funcLocker{f.RLock, f.Unlock}, nil
		}},
	"nightlyone": {Name: "nightlyone", Polling: true,
		About: "github.com/nightlyone/lockfile v1.0.0: TryLock (pid temp file + link) / Unlock, polled; an ENOENT from TryLock (its owner check racing a release) is retried at once",
		New: func(p string, s Settings) (Locker, error) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			l, err := lockfile.New(abs)
			if err != nil {
				return nil, err
			}
			return &nightly{l: l, poll: pollOr(s, time.Millisecond)}, nil
		}},
	"lockedfile": {Name: "lockedfile",
		About: "github.com/rogpeppe/go-internal v1.16.0 lockedfile.MutexAt: Lock (open + flock) / unlock (close)",
		New: func(p string, s Settings) (Locker, error) {
			return &mutexAt{mu: lockedfile.MutexAt(p)}, nil
		}},
}

// Names returns the peers' names, sorted.
func Names() []string {
	var ns []string
	for n := range Peers {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Uncontended are the peers of scenario 1, in table order.
var Uncontended = []string{
	"raw-excl", "raw-excl-sync", "raw-mkdir", "flock",
	"dotlock-lockfile", "dotlock-lockdir", "dotlock-rw-exclusive", "dotlock-rw-shared", "dotlock-semaphore",
	"gofrs-flock", "nightlyone", "lockedfile",
}

// ParseSpec reads "name[,poll=D][,pollmax=D][,stale=D][,slots=N]".
func ParseSpec(spec string) (Peer, Settings, error) {
	parts := strings.Split(spec, ",")
	p, ok := Peers[parts[0]]
	if !ok {
		return Peer{}, Settings{}, fmt.Errorf("unknown peer %q (have %s)", parts[0], strings.Join(Names(), ", "))
	}
	var s Settings
	for _, kv := range parts[1:] {
		k, v, _ := strings.Cut(kv, "=")
		if k == "slots" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, s, fmt.Errorf("peer %s: %s: %v", parts[0], kv, err)
			}
			s.Slots = n
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return p, s, fmt.Errorf("peer %s: %s: %v", parts[0], kv, err)
		}
		switch k {
		case "poll":
			s.Poll = d
		case "pollmax":
			s.PollMax = d
		case "stale":
			s.StaleAfter = d
		default:
			return p, s, fmt.Errorf("peer %s: unknown setting %q", parts[0], k)
		}
	}
	return p, s, nil
}

// Mono is CLOCK_MONOTONIC in nanoseconds: the clock the Node and Python
// workers read too (process.hrtime, time.monotonic_ns), so timestamps from
// processes in different languages on one host compare.
func Mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func pollOr(s Settings, d time.Duration) time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return d
}

func dotlockOpts(s Settings) []dotlock.Option {
	var opts []dotlock.Option
	if s.Poll > 0 {
		mx := s.PollMax
		if mx == 0 {
			mx = s.Poll
		}
		opts = append(opts, dotlock.WithPoll(s.Poll, mx))
	}
	if s.StaleAfter > 0 {
		opts = append(opts, dotlock.WithStaleAfter(s.StaleAfter))
	}
	return opts
}

type ctxLocker struct {
	lock   func(context.Context) error
	unlock func() error
}

func (c ctxLocker) Lock() error   { return c.lock(context.Background()) }
func (c ctxLocker) Unlock() error { return c.unlock() }

// slotLocker holds one slot of a semaphore at a time.
type slotLocker struct {
	sem  *semaphore.Semaphore
	slot *semaphore.Slot
}

func (l *slotLocker) Lock() error {
	slot, err := l.sem.Acquire(context.Background())
	l.slot = slot
	return err
}

func (l *slotLocker) Unlock() error { return l.slot.Release() }

type funcLocker struct{ lock, unlock func() error }

func (f funcLocker) Lock() error   { return f.lock() }
func (f funcLocker) Unlock() error { return f.unlock() }

type rawExcl struct {
	path string
	poll time.Duration
	sync bool
	keep bool     // the descriptor stays open while held
	f    *os.File // kept open (keep)
}

func (r *rawExcl) Lock() error {
	for {
		f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			time.Sleep(r.poll)
			continue
		}
		if err != nil {
			return err
		}
		_, err = f.Write(Record)
		if err == nil && r.sync {
			err = f.Sync()
		}
		if r.keep && err == nil {
			r.f = f
			return nil
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

func (r *rawExcl) Unlock() error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	return os.Remove(r.path)
}

type rawMkdir struct {
	path string
	poll time.Duration
}

func (r *rawMkdir) Lock() error {
	for {
		err := os.Mkdir(r.path, 0o755)
		if errors.Is(err, os.ErrExist) {
			time.Sleep(r.poll)
			continue
		}
		if err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(r.path, "owner"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(Record)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

func (r *rawMkdir) Unlock() error {
	if err := os.Remove(filepath.Join(r.path, "owner")); err != nil {
		return err
	}
	return os.Remove(r.path)
}

type kflock struct{ f *os.File }

func newFlock(p string, _ Settings) (Locker, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &kflock{f}, nil
}

func (k *kflock) Lock() error {
	for {
		err := syscall.Flock(int(k.f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

func (k *kflock) Unlock() error { return syscall.Flock(int(k.f.Fd()), syscall.LOCK_UN) }

type nightly struct {
	l    lockfile.Lockfile
	poll time.Duration
}

func (n *nightly) Lock() error {
	for {
		err := n.l.TryLock()
		if err == nil {
			return nil
		}
		var t interface{ Temporary() bool }
		if errors.As(err, &t) && t.Temporary() {
			time.Sleep(n.poll)
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			// TryLock's owner check read the lock file after its holder
			// removed it (a race in nightlyone under contention): the
			// lock is free, try again at once.
			continue
		}
		return err
	}
}

func (n *nightly) Unlock() error { return n.l.Unlock() }

type mutexAt struct {
	mu     *lockedfile.Mutex
	unlock func()
}

func (m *mutexAt) Lock() error {
	u, err := m.mu.Lock()
	if err != nil {
		return err
	}
	m.unlock = u
	return nil
}

func (m *mutexAt) Unlock() error {
	m.unlock()
	m.unlock = nil
	return nil
}
