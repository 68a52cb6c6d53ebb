package semaphore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/config"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
	"github.com/dotlock/dotlock/stale"
)

// Polling bounds (unless WithPoll says otherwise) for the waiter at the
// head of the line, looking for a free slot: a release on this host wakes
// it at once (Linux: inotify); one elsewhere is seen at the next look, at
// most about 20 looks a second.
const (
	pollMin = time.Millisecond
	pollMax = 50 * time.Millisecond
)

// Semaphore is a handle on a counting lock. It is safe for concurrent use:
// goroutines that acquire through one handle hold distinct slots.
type Semaphore struct {
	dir      string
	slots    []*dotlock.Mutex
	line     *dotlock.RWMutex
	next     atomic.Uint32 // where the next look starts, spreading holders
	released chan struct{} // a slot of this handle was released

	pollMin, pollMax time.Duration // WithPoll's, or pollMin and pollMax
}

// Slot is one held place of a semaphore.
type Slot struct {
	sem   *Semaphore
	index int
	m     *dotlock.Mutex
	token uint64
	lost  <-chan struct{}
	done  atomic.Bool
}

// New returns a handle on the semaphore of n slots in the directory dir,
// made if missing (its parent must exist). The first user records n; a
// later New with another n fails with an error wrapping *fs.PathError. The
// options are those of the slots' locks (package dotlock).
func New(dir string, n int, opts ...dotlock.Option) (*Semaphore, error) {
	if n < 1 || n > 1<<16 {
		return nil, &fs.PathError{Op: "semaphore", Path: dir, Err: fmt.Errorf("%d slots: want 1 to %d", n, 1<<16)}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &fs.PathError{Op: "semaphore", Path: dir, Err: err}
	}
	if err := makeDir(abs); err != nil {
		return nil, err
	}
	if err := recordSize(abs, n); err != nil {
		return nil, err
	}
	s := &Semaphore{dir: abs, released: make(chan struct{}, 1), pollMin: pollMin, pollMax: pollMax}
	var c config.Config
	for _, o := range opts {
		config.Apply(o, &c)
	}
	if c.PollMin > 0 {
		s.pollMin = c.PollMin
	}
	if c.PollMax > 0 {
		s.pollMax = max(c.PollMax, s.pollMin)
	}
	if s.line, err = lockdir.New(filepath.Join(abs, "turn"), opts...); err != nil {
		return nil, err
	}
	for i := range n {
		m, err := lockfile.New(filepath.Join(abs, "slot."+strconv.Itoa(i)), opts...)
		if err != nil {
			return nil, err
		}
		s.slots = append(s.slots, m)
	}
	return s, nil
}

// makeDir makes the semaphore's directory, or checks that what is there
// is one (never a symlink: it could lead anywhere).
func makeDir(dir string) error {
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "semaphore", Path: dir, Err: fmt.Errorf("not a directory (%v): %w", fi.Mode().Type(), dotlock.ErrNotLock)}
	}
	return nil
}

// recordSize records n as the semaphore's size, if no size is recorded,
// and checks that the size recorded is n.
func recordSize(dir string, n int) error {
	// A user's directory: nothing of it is ever changed, or removed.
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	if foreign := foreignNames(names); len(foreign) > 0 {
		return notSemaphore(dir, foreign)
	}
	mine := "size." + strconv.Itoa(n)
	err = os.Mkdir(filepath.Join(dir, mine), 0o777)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	made := err == nil
	if names, err = readNames(dir); err != nil {
		return err
	}
	se := &SizeError{Asked: n}
	for _, name := range names {
		if s, ok := strings.CutPrefix(name, "size."); ok && !(made && name == mine) {
			r, _ := strconv.Atoi(s)
			se.Recorded = append(se.Recorded, r)
		}
	}
	if len(se.Recorded) == 0 && made || len(se.Recorded) == 1 && se.Recorded[0] == n && !made {
		return nil
	}
	if made {
		os.Remove(filepath.Join(dir, mine)) // ours, and empty: not recorded after all
	}
	return &fs.PathError{Op: "semaphore", Path: dir, Err: se}
}

// SizeError says that a semaphore's directory records another number of
// slots than New was given (or, if users disagreed at once, several).
type SizeError struct {
	Recorded []int // the sizes recorded
	Asked    int
}

// Error names the sizes recorded and what to do.
func (e *SizeError) Error() string {
	var r []string
	for _, n := range e.Recorded {
		r = append(r, strconv.Itoa(n))
	}
	return fmt.Sprintf("%s slots recorded, not %d: every user of a semaphore must give the same count (to change it, stop them all and remove the directory)", strings.Join(r, " and "), e.Asked)
}

// foreignNames returns the names (at most 3) that a semaphore's directory
// may not hold: anything but size.N, and the slots' and the line's own
// entries (package lockfile's and lockdir's names beside a lock).
func foreignNames(names []string) []string {
	var foreign []string
	for _, name := range names {
		if !semaphoreName(name) && len(foreign) < 3 {
			foreign = append(foreign, strconv.Quote(name))
		}
	}
	return foreign
}

// notSemaphore is the error for a directory holding foreign names.
func notSemaphore(dir string, foreign []string) error {
	return &fs.PathError{Op: "semaphore", Path: dir, Err: fmt.Errorf("%w: a directory holding entries a semaphore does not make (%s)", dotlock.ErrNotLock, strings.Join(foreign, ", "))}
}

func semaphoreName(name string) bool {
	if n, ok := strings.CutPrefix(name, "size."); ok {
		return n != "" && strings.Trim(n, "0123456789") == ""
	}
	if n, ok := strings.CutPrefix(name, "slot."); ok {
		digits := len(n) - len(strings.TrimLeft(n, "0123456789"))
		return digits > 0 && lockcore.SiblingName("slot."+n[:digits], name)
	}
	return lockcore.SiblingName("turn", name)
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// SizeOf returns the number of slots recorded in the semaphore directory
// dir, changing nothing; an error wrapping *fs.PathError if there is none
// (matching fs.ErrNotExist) or dir is not a semaphore's alone (ErrNotLock).
func SizeOf(dir string) (int, error) {
	names, err := readNames(dir)
	if err != nil {
		return 0, err
	}
	if foreign := foreignNames(names); len(foreign) > 0 {
		return 0, notSemaphore(dir, foreign)
	}
	n := 0
	for _, name := range names {
		if s, ok := strings.CutPrefix(name, "size."); ok {
			if n != 0 {
				return 0, &fs.PathError{Op: "semaphore", Path: dir, Err: errors.New("more than one size recorded (users disagree)")}
			}
			n, _ = strconv.Atoi(s)
		}
	}
	if n == 0 {
		return 0, &fs.PathError{Op: "semaphore", Path: dir, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Size returns the number of slots.
func (s *Semaphore) Size() int { return len(s.slots) }

// Acquire waits in line for a slot, or until ctx is done and then returns
// ctx.Err() unchanged. A dead holder's slot is reclaimed as a dead
// holder's lock is.
func (s *Semaphore) Acquire(ctx context.Context) (*Slot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.lineBusy() {
		// No one waits: no line to stand in (a waiter that comes in
		// meanwhile may be passed, once).
		if slot, err := s.look(); slot != nil || err != nil {
			return slot, err
		}
	}
	if err := s.line.Lock(ctx); err != nil {
		return nil, err
	}
	defer s.line.Unlock()
	var watch *lockcore.Watcher
	defer func() {
		if watch != nil {
			watch.Stop()
		}
	}()
	delay := s.pollMin
	for {
		var changed <-chan struct{}
		if watch != nil {
			changed = watch.C()
		}
		slot, err := s.look()
		if slot != nil || err != nil {
			return slot, err
		}
		if watch == nil {
			// Every slot held: from now on, a release on this host wakes
			// us; one elsewhere is seen at the next look.
			watch = lockcore.WatchPaths(s.paths())
			continue
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-s.released:
			delay = s.pollMin
		case <-changed:
			delay = s.pollMin
		case <-t.C:
			delay = min(2*delay, s.pollMax)
		}
		t.Stop()
	}
}

func (s *Semaphore) paths() []string {
	var p []string
	for _, m := range s.slots {
		p = append(p, m.Path())
	}
	return p
}

// TryAcquire takes a free slot, or returns an error matching
// dotlock.ErrLocked if every slot is held (Cause AllSlotsHeld) or anyone
// waits in line (WaitersQueued). It waits for others at most about 1 s
// for each slot, as a lock's TryLock does (a break under way).
func (s *Semaphore) TryAcquire() (*Slot, error) {
	if s.lineBusy() {
		// Someone waits, or a waiter died in line: taking the line tells
		// which (a dead waiter's place is reclaimed as a dead holder's).
		if err := s.line.TryLock(); err != nil {
			var le *dotlock.LockedError
			if errors.As(err, &le) {
				err = &fs.PathError{Op: "acquire", Path: s.dir, Err: &dotlock.LockedError{Owners: le.Owners, Cause: dotlock.WaitersQueued, Reason: "a waiter is in line for a slot"}}
			}
			return nil, err
		}
		defer s.line.Unlock()
	}
	slot, err := s.look()
	if slot == nil && err == nil {
		err = &fs.PathError{Op: "acquire", Path: s.dir, Err: &dotlock.LockedError{Owners: s.holders(), Cause: dotlock.AllSlotsHeld, Reason: fmt.Sprintf("all %d slots held", len(s.slots))}}
	}
	return slot, err
}

// lineBusy reports whether anyone waits in line (or the line's lock is
// left by a waiter that died: the next waiter reclaims it).
func (s *Semaphore) lineBusy() bool {
	_, err := os.Lstat(s.line.Path())
	return !errors.Is(err, fs.ErrNotExist)
}

// look tries every slot once, from a rotating start.
func (s *Semaphore) look() (*Slot, error) {
	start := int(s.next.Add(1))
	for k := range s.slots {
		i := (start + k) % len(s.slots)
		err := s.slots[i].TryLock()
		if err == nil {
			m := s.slots[i]
			return &Slot{sem: s, index: i, m: m, token: m.Token(), lost: m.Lost()}, nil
		}
		if !errors.Is(err, dotlock.ErrLocked) {
			return nil, err
		}
	}
	return nil, nil
}

// Holders returns the records of the slots' holders now.
func (s *Semaphore) Holders() ([]stale.Owner, error) {
	var owners []stale.Owner
	for _, m := range s.slots {
		o, err := m.Owner()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return owners, err
		}
		owners = append(owners, o)
	}
	return owners, nil
}

func (s *Semaphore) holders() []stale.Owner {
	o, _ := s.Holders()
	return o
}

// Release gives the slot up; errors as a lock's Unlock (ErrNotHeld,
// ErrLost).
func (sl *Slot) Release() error {
	// The slot's lock handle is the semaphore handle's: once released, it
	// may hold another goroutine's slot, which this one must not release.
	if sl.done.Swap(true) {
		return &fs.PathError{Op: "release", Path: sl.m.Path(), Err: dotlock.ErrNotHeld}
	}
	err := sl.m.Unlock()
	select {
	case sl.sem.released <- struct{}{}:
	default:
	}
	return err
}

// Index returns the slot's number, 0 to Size()-1.
func (sl *Slot) Index() int { return sl.index }

// Token returns the slot's fencing token: greater than every earlier
// hold's of this slot.
func (sl *Slot) Token() uint64 { return sl.token }

// Lost returns a channel closed if the hold of the slot is found lost.
func (sl *Slot) Lost() <-chan struct{} { return sl.lost }
