//go:build linux

package faultfstest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
	"github.com/dotlock/dotlock/stale"
)

// Randomized fault schedules. Each schedule, decided by its seed, sets a few
// rules on the mount (fail, lose the reply, tear a write, delay; on
// operations and names the lock uses) and drives a subject handle through
// the mount while a contender handle on the backing directory — the same
// files, fault-free, as another client sees them — takes and releases the
// lock. Checked:
//
//   - exclusion: the two never hold at once (a writer alone; readers
//     together), and a hold the subject reports has its record, with its
//     token, at the path in the backing directory;
//   - tokens: each exclusive hold's token is greater than every earlier one;
//   - a failed acquisition holds nothing (the handle holds no token, Unlock
//     says not held), and whatever it left behind is reclaimed: once the
//     faults stop, a fault-free acquirer gets the lock within the grace
//     period plus slack (P5, P6);
//   - every error reaching the caller is an *fs.PathError naming the lock
//     path and wraps an injected errno (or is ErrLocked, ErrLost, or the
//     context's);
//   - the fault-free contender never loses a hold and never sees an error;
//   - takeover: when another owner's record replaced the subject's, Unlock
//     under faults reports failure and leaves that record as it was.
//
// DOTLOCK_FAULT_SEED=N replays schedule N alone (the interleaving of the
// heartbeat and the contender may differ from the failing run: faults are
// decided per operation and name, not by time). DOTLOCK_FAULT_SCHEDULES
// and DOTLOCK_FAULT_BASE choose how many schedules run, from which seed.

const (
	grace = 100 * time.Millisecond
	lease = 400 * time.Millisecond // heartbeat every 100 ms
	// reclaimBound is how long a fault-free acquirer may take to get a
	// lock a failed schedule left behind: the grace period (P5), with
	// slack for -race on a shared machine.
	reclaimBound = grace + 3*time.Second
)

func opts() []lockcore.Option {
	return []lockcore.Option{
		lockcore.WithGrace(grace),
		lockcore.WithStaleAfter(lease),
		lockcore.WithPoll(time.Millisecond, 10*time.Millisecond),
		lockcore.WithSync(true),
	}
}

// handle is one lock handle of any kind.
type handle struct {
	try, tryR     func() error
	lock, rlock   func(context.Context) error
	unlock, runlk func() error
	token         func() uint64
	lost          func() <-chan struct{}
}

type kind struct {
	name   string
	rw     bool
	open   func(path string) (*handle, error)
	record func(lockPath string) string // the exclusive record
	names  []string                     // names rules pick from ("" is any)
}

var (
	kindFile = kind{
		name: "lockfile",
		open: func(p string) (*handle, error) {
			l, err := lockfile.New(p, opts()...)
			if err != nil {
				return nil, err
			}
			return &handle{try: l.TryLock, lock: l.Lock, unlock: l.Unlock, token: l.Token, lost: l.Lost}, nil
		},
		record: func(p string) string { return p },
		names:  []string{"", "x.lock", "x.lock", "x.lock.break", "x.lock.last", "x.lock.gone.*"},
	}
	kindDir = kind{
		name: "lockdir",
		open: func(p string) (*handle, error) {
			l, err := lockdir.New(p, opts()...)
			if err != nil {
				return nil, err
			}
			return &handle{try: l.TryLock, lock: l.Lock, unlock: l.Unlock, token: l.Token, lost: l.Lost}, nil
		},
		record: func(p string) string { return filepath.Join(p, lockcore.OwnerFile) },
		names:  []string{"", "x.lock", "owner", "owner", "x.lock.break", "x.lock.last", "x.lock.gone.*", "x.lock.queue", "*.w.*"},
	}
	kindRW = kind{
		name: "rw",
		rw:   true,
		open: func(p string) (*handle, error) {
			l, err := lockdir.New(p, opts()...)
			if err != nil {
				return nil, err
			}
			return &handle{try: l.TryLock, tryR: l.TryRLock, lock: l.Lock, rlock: l.RLock,
				unlock: l.Unlock, runlk: l.RUnlock, token: l.Token, lost: l.Lost}, nil
		},
		record: kindDir.record,
		names:  []string{"", "x.lock", "owner", "owner", "r.*", "r.*", "x.lock.break", "x.lock.break", "x.lock.last", "x.lock.gone.*", "x.lock.queue", "*.r.*", "*.w.*"},
	}
)

func TestFaultsLockfile(t *testing.T) { t.Parallel(); runSchedules(t, kindFile) }
func TestFaultsLockdir(t *testing.T)  { t.Parallel(); runSchedules(t, kindDir) }
func TestFaultsRW(t *testing.T)       { t.Parallel(); runSchedules(t, kindRW) }

func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

func runSchedules(t *testing.T, k kind) {
	f := MountT(t, Options{})
	base, count := envUint(t, "DOTLOCK_FAULT_BASE", 1), envUint(t, "DOTLOCK_FAULT_SCHEDULES", 60)
	if s := os.Getenv("DOTLOCK_FAULT_SEED"); s != "" {
		base, count = envUint(t, "DOTLOCK_FAULT_SEED", 0), 1
	}
	start := time.Now()
	var faults, failed int
	for seed := base; seed < base+count; seed++ {
		n, ok := runSchedule(t, f, k, seed, nil)
		faults += n
		if !ok {
			failed++
		}
	}
	t.Logf("%s: %d fault schedules (seeds %d..%d), %d faults injected, %d schedules failed, in %v",
		k.name, count, base, base+count-1, faults, failed, time.Since(start).Round(time.Millisecond))
}

// randomRules draws one to three rules for the names kind k uses.
func randomRules(rng *rand.Rand, k kind) []Rule {
	rules := make([]Rule, 1+rng.IntN(3))
	for i := range rules {
		r := Rule{Op: Ops[rng.IntN(len(Ops))], Name: k.names[rng.IntN(len(k.names))]}
		acts := []Action{Fail, Fail, Delay}
		switch r.Op {
		case OpWrite:
			acts = append(acts, LostReply, Torn, Torn)
		case OpFsync, OpCreate, OpMkdir, OpRmdir, OpUnlink, OpRename:
			acts = append(acts, LostReply, LostReply)
		}
		r.Action = acts[rng.IntN(len(acts))]
		errnos := []syscall.Errno{syscall.EIO, syscall.EIO}
		switch r.Op {
		case OpWrite, OpFsync, OpCreate, OpMkdir, OpRename:
			errnos = append(errnos, syscall.ENOSPC)
		}
		switch r.Op {
		case OpCreate, OpMkdir, OpOpen, OpLookup, OpRename, OpUnlink, OpRmdir:
			errnos = append(errnos, syscall.EACCES)
		}
		r.Errno = errnos[rng.IntN(len(errnos))]
		r.Delay = time.Duration(5+rng.IntN(80)) * time.Millisecond
		r.Prob = []float64{1, 1, 0.5, 0.25}[rng.IntN(4)]
		r.After = rng.IntN(4)
		// Transient: a fault that never ends leaves nothing to test but
		// that every call fails. (The library retries its cleanups for
		// twice the grace period; faults lasting longer can leave a record
		// naming this live process, which only its exit frees.)
		r.Times = 1 + rng.IntN(3)
		rules[i] = r
	}
	return rules
}

// holders watches who holds: the subject and the contender register their
// holds here, and any overlap the lock should have prevented is reported.
type holders struct {
	mu               sync.Mutex
	writers, readers int
	maxTok, maxExcl  uint64
}

func (h *holders) enter(shared bool, tok uint64) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var problem string
	if shared {
		h.readers++
		if tok <= h.maxExcl {
			problem = fmt.Sprintf("shared hold has token %d, not above the last exclusive hold's %d", tok, h.maxExcl)
		}
	} else {
		h.writers++
		if tok <= h.maxTok {
			problem = fmt.Sprintf("exclusive hold has token %d, not above the last hold's %d", tok, h.maxTok)
		}
		h.maxExcl = max(h.maxExcl, tok)
	}
	h.maxTok = max(h.maxTok, tok)
	if h.writers > 1 || (h.writers > 0 && h.readers > 0) {
		problem = fmt.Sprintf("two hold at once: %d writers, %d readers", h.writers, h.readers)
	}
	return problem
}

func (h *holders) leave(shared bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if shared {
		h.readers--
	} else {
		h.writers--
	}
}

// schedule is one run's state.
type schedule struct {
	t      *testing.T
	f      *FS
	k      kind
	seed   uint64
	rules  []Rule
	mpath  string // the lock path through the mount
	bpath  string // the same, in the backing directory
	hs     holders
	log    []Fault // the faults injected, once they are cleared
	mu     sync.Mutex
	failed bool
}

func (s *schedule) fail(format string, args ...any) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
	s.t.Errorf("%s seed %d (replay: DOTLOCK_FAULT_SEED=%d go test -race -run %s)\n  rules: %v\n  faults: %v\n  %s",
		s.k.name, s.seed, s.seed, s.t.Name(), s.rules, append(s.log, s.f.Faults()...), fmt.Sprintf(format, args...))
}

// tracef logs what the subject and contender do, when DOTLOCK_FAULT_TRACE
// is set (for replaying a seed).
func (s *schedule) tracef(format string, args ...any) {
	if os.Getenv("DOTLOCK_FAULT_TRACE") != "" {
		s.t.Logf("%s seed %d: %s (faults so far: %v)", s.k.name, s.seed, fmt.Sprintf(format, args...), s.f.Faults())
	}
}

// checkErr reports an error that does not say what failed: it must be an
// *fs.PathError naming the lock path, wrapping an errno the rules inject.
func (s *schedule) checkErr(what string, err error) {
	s.t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != s.mpath {
		s.fail("%s: error %q is not an *fs.PathError naming %s", what, err, s.mpath)
		return
	}
	var en syscall.Errno
	if !errors.As(err, &en) {
		s.fail("%s: error %q wraps no errno", what, err)
		return
	}
	for _, r := range s.rules {
		if r.Action != Delay && r.errno() == en {
			return
		}
	}
	s.fail("%s: error %q wraps %v, which no rule injects", what, err, en)
}

func benign(err error) bool {
	return errors.Is(err, lockcore.ErrLocked) || errors.Is(err, context.DeadlineExceeded)
}

// runSchedule runs the schedule of seed; it returns the number of faults
// injected, and whether every check passed.
//
// rules, if not nil, replace the seed's (regression cases).
func runSchedule(t *testing.T, f *FS, k kind, seed uint64, rules []Rule) (int, bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	dir, err := os.MkdirTemp(f.Backing, fmt.Sprintf("s%d-", seed))
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Base(dir)
	if r := randomRules(rng, k); rules == nil {
		rules = r
	}
	s := &schedule{t: t, f: f, k: k, seed: seed, rules: rules,
		mpath: filepath.Join(f.Mount, dir, "x.lock"), bpath: filepath.Join(f.Backing, dir, "x.lock")}
	subject, err := k.open(s.mpath)
	if err != nil {
		t.Fatal(err)
	}
	contender, err := k.open(s.bpath)
	if err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.contend(ctx, contender, rand.New(rand.NewPCG(seed, 0xc0)))
	}()
	f.Set(seed, s.rules...)
	for range 3 {
		s.round(subject, rng)
	}
	stop()
	wg.Wait()
	s.log = f.Faults()
	faults := len(s.log)
	f.Clear()

	// Whatever the faults left behind, a fault-free acquirer gets the lock
	// within the bound, and so does the subject, now that faults stopped.
	s.reclaim(contender, "after the faults, the fault-free contender")
	if err := subject.try(); err != nil {
		s.fail("after the faults, the subject's TryLock: %v", err)
	} else if err := subject.unlock(); err != nil {
		s.fail("after the faults, the subject's Unlock: %v", err)
	}

	if !s.failed && rng.IntN(3) == 0 {
		faults += s.takeover(subject, rng)
	}
	return faults, !s.failed
}

// reclaim checks that h gets the lock within reclaimBound, and releases it.
func (s *schedule) reclaim(h *handle, who string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), reclaimBound)
	defer cancel()
	start := time.Now()
	if err := h.lock(ctx); err != nil {
		s.fail("%s could not take the lock within %v: %v\n  left at the path: %s", who, reclaimBound, err, s.describe())
		return
	}
	if tok := h.token(); s.hs.enter(false, tok) != "" {
		s.fail("%s: token %d not above the last, %d", who, tok, s.hs.maxTok)
	}
	s.hs.leave(false)
	if err := h.unlock(); err != nil {
		s.fail("%s: Unlock: %v", who, err)
	}
	if d := time.Since(start); d > grace+time.Second {
		s.t.Logf("%s seed %d: %s took %v", s.k.name, s.seed, who, d)
	}
}

// describe lists what is at the lock path and beside it, in the backing
// directory.
func (s *schedule) describe() string {
	var b strings.Builder
	filepath.WalkDir(filepath.Dir(s.bpath), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if err == nil {
				fmt.Fprintf(&b, "\n    %s/", p)
			}
			return nil
		}
		data, _ := os.ReadFile(p)
		o, perr := stale.Parse(data)
		if perr != nil {
			fmt.Fprintf(&b, "\n    %s: %d bytes, %v", p, len(data), perr)
		} else {
			fmt.Fprintf(&b, "\n    %s: token %d mode %s pid %d uuid %s", p, o.Token, o.Mode, o.PID, o.UUID)
		}
		return nil
	})
	return b.String()
}

// contend takes and releases the lock through the backing directory until
// ctx is done. It sees no faults, so it never fails and never loses a hold.
func (s *schedule) contend(ctx context.Context, h *handle, rng *rand.Rand) {
	for ctx.Err() == nil {
		shared := s.k.rw && rng.IntN(2) == 0
		lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		var err error
		if shared {
			err = h.rlock(lctx)
		} else {
			err = h.lock(lctx)
		}
		cancel()
		s.tracef("contender lock (shared %v): %v", shared, err)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.fail("the fault-free contender failed to lock: %v", err)
				return
			}
			continue
		}
		if p := s.hs.enter(shared, h.token()); p != "" {
			s.fail("contender took the lock (shared %v): %s\n  at the path: %s", shared, p, s.describe())
		}
		hold(rng, 20*time.Millisecond)
		s.hs.leave(shared)
		if shared {
			err = h.runlk()
		} else {
			err = h.unlock()
		}
		if err != nil {
			s.fail("the fault-free contender's unlock (shared %v): %v (a live lock was taken from it)", shared, err)
			return
		}
	}
}

// hold keeps a lock for a random time up to max: the work done under it.
func hold(rng *rand.Rand, max time.Duration) {
	if d := time.Duration(rng.Int64N(int64(max) + 1)); rng.IntN(4) != 0 {
		<-time.After(d)
	}
}

// round makes the subject take the lock once (or fail to), hold it, and
// release it, under the schedule's faults.
func (s *schedule) round(h *handle, rng *rand.Rand) {
	shared := s.k.rw && rng.IntN(2) == 0
	var err error
	what := "TryLock"
	switch {
	case rng.IntN(2) == 0 && shared:
		err = h.tryR()
		what = "TryRLock"
	case rng.IntN(2) == 0:
		err = h.try()
		shared = false
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if shared {
			err, what = h.rlock(ctx), "RLock"
		} else {
			err, what = h.lock(ctx), "Lock"
		}
		cancel()
	}
	s.tracef("subject %s: %v", what, err)
	if err != nil {
		if !benign(err) {
			s.checkErr(what, err)
		}
		// It failed: it holds nothing.
		if tok := h.token(); tok != 0 {
			s.fail("%s failed (%v) but the handle holds token %d", what, err, tok)
		}
		if err := h.unlock(); !errors.Is(err, lockcore.ErrNotHeld) {
			s.fail("%s failed, then Unlock: %v, want ErrNotHeld", what, err)
		}
		return
	}
	tok := h.token()
	if p := s.hs.enter(shared, tok); p != "" {
		s.fail("subject's %s succeeded: %s\n  at the path: %s", what, p, s.describe())
	}
	s.checkRecord(what, shared, tok)
	hold(rng, 150*time.Millisecond)
	s.hs.leave(shared)
	lost := false
	select {
	case <-h.lost():
		lost = true
	default:
	}
	if shared {
		err, what = h.runlk(), "RUnlock"
	} else {
		err, what = h.unlock(), "Unlock"
	}
	s.tracef("subject %s: %v", what, err)
	switch {
	case err == nil:
	case errors.Is(err, lockcore.ErrLost):
		if !lost {
			s.fail("%s: %v, but Lost() was not closed before it", what, err)
		}
	default:
		s.checkErr(what, err)
	}
	if lost {
		s.fail("the subject's hold was reported lost (%v); no one else could take it", err)
	}
}

// checkRecord checks that the subject's hold has its record at the path,
// in the fault-free view.
func (s *schedule) checkRecord(what string, shared bool, tok uint64) {
	var names []string
	if shared {
		ents, err := os.ReadDir(s.bpath)
		if err != nil {
			s.fail("subject's %s succeeded, but the lock directory: %v", what, err)
			return
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "r.") {
				names = append(names, filepath.Join(s.bpath, e.Name()))
			}
		}
	} else {
		names = []string{s.k.record(s.bpath)}
	}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		if o, err := stale.Parse(data); err == nil && o.Token == tok && o.PID == os.Getpid() &&
			(o.Mode == stale.ModeShared) == shared {
			return
		}
	}
	s.fail("subject's %s succeeded with token %d, but no such record is at the path: %s", what, tok, s.describe())
}

// takeover: the subject holds; another owner's record replaces its own (as
// after a break of a hold whose lease lapsed); Unlock under faults must
// fail and leave that record alone.
func (s *schedule) takeover(h *handle, rng *rand.Rand) int {
	if err := h.try(); err != nil {
		s.fail("takeover: TryLock without faults: %v", err)
		return 0
	}
	other, err := stale.Self(h.token()+10, stale.ModeExclusive, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	other.Host = "elsewhere" // remote: judged by its lease, which outlasts this test
	rec := other.Marshal()
	path := s.k.record(s.bpath)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, rec, 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		s.t.Fatal(err)
	}
	s.rules = randomRules(rng, s.k)
	s.f.Set(s.seed^0x7a4e, s.rules...)
	err = h.unlock()
	faults := len(s.f.Faults())
	s.f.Clear()
	if err == nil {
		s.fail("takeover: Unlock succeeded, but the record at the path was another owner's")
	} else if !errors.Is(err, lockcore.ErrLost) {
		s.checkErr("takeover: Unlock", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != string(rec) {
		s.fail("takeover: Unlock (%v) did not leave the other owner's record: %q, %v", err, got, err)
	}
	if h.token() != 0 {
		s.fail("takeover: after Unlock the handle still holds token %d", h.token())
	}
	os.Remove(path)
	os.Remove(s.bpath) // a lock directory
	return faults
}

// TestFaultRegressions replays the fault rules of schedules that found bugs
// in lockcore (each fixed; docs/PROTOCOL.md, "Fault injection"). Most
// failed every time; the races among them, often enough to be seen in a
// few runs: each runs three times.
func TestFaultRegressions(t *testing.T) {
	t.Parallel()
	eio, enospc, eacces := syscall.EIO, syscall.ENOSPC, syscall.EACCES
	cases := []struct {
		k     kind
		seed  uint64
		bug   string
		rules []Rule
	}{
		{kindFile, 11, "A6: a failed read of the record at the path left it there, naming a live process, held by no one",
			[]Rule{{Op: OpGetattr, Name: "x.lock", Errno: eio, After: 1, Times: 2}}},
		{kindDir, 33, "R1/R2: a release that failed for a transient error left the lock held by no one",
			[]Rule{{Op: OpRename, Name: "owner", Errno: eio, Prob: 0.25, After: 1, Times: 2}}},
		{kindRW, 46, "R1/R2 of a shared hold, as above",
			[]Rule{{Op: OpRmdir, Name: "owner", Action: LostReply, Errno: eio, Prob: 0.25, After: 3, Times: 1},
				{Op: OpOpen, Name: "x.lock.break", Errno: eio, Prob: 0.25, After: 2, Times: 3},
				{Op: OpRename, Name: "x.lock.last", Errno: eio, After: 1, Times: 3}}},
		{kindRW, 37, "a lost-reply rmdir of the lock directory surfaced as ENOENT from a rename",
			[]Rule{{Op: OpRmdir, Action: LostReply, Errno: eacces, Prob: 0.25, Times: 3},
				{Op: OpGetattr, Name: "x.lock.queue", Errno: eio, Times: 3},
				{Op: OpWrite, Name: "owner", Action: Delay, Delay: 63 * time.Millisecond, Prob: 0.25, After: 1, Times: 1}}},
		{kindFile, 4, "abandon: a rename whose reply was lost was not put back; a retry moved the next holder's lock away",
			[]Rule{{Op: OpWrite, Errno: eio, After: 2, Times: 2},
				{Op: OpRename, Action: LostReply, Errno: eio, After: 1, Times: 3}}},
		{kindFile, 21, "abandon without the guard put a record back over a lock its creator had verified (tokens repeated)",
			[]Rule{{Op: OpRead, Errno: eio, After: 1, Times: 3},
				{Op: OpUnlink, Name: "x.lock.break", Action: LostReply, Errno: eio, After: 1, Times: 3},
				{Op: OpOpen, Name: "x.lock", Errno: eio, Times: 1}}},
		{kindRW, 21, "B5: a guard whose removal failed once was left, stopping every acquirer on this host",
			[]Rule{{Op: OpRead, Errno: eio, After: 1, Times: 3},
				{Op: OpUnlink, Name: "x.lock.break", Action: LostReply, Errno: eio, After: 1, Times: 3},
				{Op: OpOpen, Name: "x.lock.break", Errno: eio, Times: 1}}},
		{kindDir, 72, "a torn write of our own guard was never recognised as ours; cleanup gave up before its grace ran out",
			[]Rule{{Op: OpOpen, Name: "x.lock.queue", Errno: eio, After: 1, Times: 2},
				{Op: OpWrite, Action: Torn, Errno: eio, After: 2, Times: 3}}},
		{kindRW, 55, "a failed (not torn) guard write leaves an empty guard, standing for the grace period; cleanup gave up before three were gone",
			[]Rule{{Op: OpWrite, Errno: eio, After: 3, Times: 3},
				{Op: OpReaddir, Name: "x.lock.last", Errno: eio, Prob: 0.5, Times: 2}}},
		{kindDir, 18, "S3: a waiter whose adopt failed returned still queued; the lock was handed to it later, and never taken",
			[]Rule{{Op: OpOpen, Name: "owner", Errno: eio, Prob: 0.5, After: 1, Times: 1}}},
		{kindDir, 253, "S4: a hand-over whose queue-record removal failed left the record, and handed the lock to it again",
			[]Rule{{Op: OpUnlink, Errno: eacces, Times: 3}}},
		{kindDir, 279, "S4: a hand-over that failed after writing P left the queue record, as above",
			[]Rule{{Op: OpFsync, Name: "owner", Action: LostReply, Errno: eio, Prob: 0.25, After: 1, Times: 3}}},
		{kindRW, 436, "B1: a fresh guard, empty until written, was broken by an observer that had watched an earlier empty guard",
			[]Rule{{Op: OpCreate, Name: "r.*", Action: LostReply, Errno: enospc, After: 2, Times: 3},
				{Op: OpCreate, Name: "x.lock.break", Action: LostReply, Errno: enospc, Prob: 0.25, Times: 1}}},
		{kindRW, 10598, "S1 from the queue: a reader handed the lock joined beside its handed record (its queue record left by a lost fsync reply), and left that record naming a live process",
			[]Rule{{Op: OpFsync, Name: "r.*", Action: LostReply, Errno: eio, Times: 2}}},
		{kindRW, 10657, "S1 from the queue, as above: the hand-over's removal of the queue record failed",
			[]Rule{{Op: OpUnlink, Errno: eio, Times: 2}, {Op: OpRmdir, Name: "x.lock.gone.*", Errno: eio, Times: 3}}},
		{kindDir, 30178, "S4: a stat of P that failed (EIO) was taken for a free P; the hand-over then repeated its predecessor's token",
			[]Rule{{Op: OpGetattr, Name: "x.lock", Errno: eio, After: 1, Times: 3}}},
		{kindDir, 30278, "S4, as above: the stat failed with EACCES",
			[]Rule{{Op: OpLookup, Name: "x.lock", Errno: eacces, After: 3, Times: 3}}},
		{kindRW, 100787, "R2: a release whose rmdir's reply was lost acted on what the path named by then, a new acquirer's directory (DirStore.notEmpty)",
			[]Rule{{Op: OpRmdir, Action: LostReply, Errno: syscall.EPERM, Prob: 0.5, Times: 3},
				{Op: OpWrite, Name: "*.w.*", Errno: eio, After: 2, Times: 2}}},
	}
	f := MountT(t, Options{})
	for _, c := range cases {
		for range 3 {
			if _, ok := runSchedule(t, f, c.k, c.seed, c.rules); !ok {
				t.Errorf("regressed: %s", c.bug)
				break
			}
		}
	}
	t.Logf("%d regression schedules, 3 runs each", len(cases))
}
