package lockdir_test

// Shared/exclusive locks between handles in one process, and their cost.
// The cross-process tests are in rw_procs_test.go.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/locktest"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/stale"
)

// lockedBy returns the owners an error matching ErrLocked names, checking
// that it is an *fs.PathError for path wrapping a *LockedError.
func lockedBy(t *testing.T, err error, path string) []stale.Owner {
	t.Helper()
	if !errors.Is(err, dotlock.ErrLocked) {
		t.Fatalf("got %v, want an error matching ErrLocked", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("error %v is not an *fs.PathError for %s", err, path)
	}
	var le *dotlock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error %v does not wrap a *LockedError", err)
	}
	return le.Owners
}

// waitQueueEntry waits until the queue of the lock at path holds a waiter
// whose name contains mark (".w." for a writer, ".r." for a reader).
func waitQueueEntry(t *testing.T, path, mark string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(path + ".queue")
		for _, e := range ents {
			if strings.Contains(e.Name(), mark) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q waiter in %s.queue within 10s", mark, path)
		}
		time.Sleep(time.Millisecond) // polling a real event
	}
}

// queueLeft reports what is left in the queue of the lock at path.
func queueLeft(path string) []string {
	ents, err := os.ReadDir(path + ".queue")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return []string{err.Error()}
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustRW(t testing.TB, path string, opts ...dotlock.Option) *dotlock.RWMutex {
	t.Helper()
	l, err := lockdir.New(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// recv waits for the result of a goroutine, failing after a deadline.
func recv(t *testing.T, c <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no result within 10s", what)
		return nil
	}
}

// rwStep is one step of a TestRWInProcess case: an operation on the
// handle named h (opened on the lock path at its first use), or a check.
type rwStep struct {
	h  string
	op string // one of the cases of (*rwRun).do
	// want is the error the operation must return (nil: success); a
	// context error must be the context's own.
	want error
	// locked: the operation fails with ErrLocked naming exactly these
	// handles (by their hold's token; a handle that holds nothing, a
	// waiter, by a record of this process that is no hold's).
	locked []string
	fresh  bool          // the token it takes is new: not 0, not one seen before
	newer  []string      // the token it takes is above these handles' last tokens
	n      int           // readers: how many reader records
	after  time.Duration // rlock, lock: with a deadline this far off, which it must not beat
	cancel bool          // rlock, lock: with a context already cancelled
}

// rwInProcess are the cases of TestRWInProcess: shared/exclusive locks
// between handles in one process.
var rwInProcess = []struct {
	name  string
	steps []rwStep
}{
	{"SharedThenExclusive", []rwStep{
		{h: "h1", op: "rlock", fresh: true},
		{h: "h2", op: "rlock", fresh: true}, // a second reader
		{h: "h1", op: "notlost"}, {h: "h2", op: "notlost"},
		{h: "h1", op: "readers", n: 2},
		{h: "plain", op: "trylock", locked: []string{"h1", "h2"}},
		{h: "h1", op: "runlock"},
		{h: "h1", op: "lost"}, // a handle holding nothing
		{h: "plain", op: "trylock", locked: []string{"h2"}},
		{h: "h2", op: "runlock"},
		{h: "plain", op: "trylock", newer: []string{"h1", "h2"}},
		// A writer excludes readers and writers.
		{h: "h1", op: "tryrlock", locked: []string{"plain"}},
		{h: "h1", op: "trylock", locked: []string{"plain"}},
		{h: "plain", op: "unlock"},
		{op: "gone"},
	}},
	{"OneHandleManyHolds", []rwStep{
		{h: "h", op: "runlock", want: dotlock.ErrNotHeld},
		{h: "h", op: "rlock"}, {h: "h", op: "rlock"}, {h: "h", op: "rlock"},
		{h: "h", op: "readers", n: 3},
		{h: "h", op: "runlock"}, {h: "h", op: "runlock"}, {h: "h", op: "runlock"},
		{h: "h", op: "runlock", want: dotlock.ErrNotHeld},
		{h: "h", op: "unlock", want: dotlock.ErrNotHeld}, // after shared holds only
		{op: "gone"},
	}},
	{"CancelWaitingRLock", []rwStep{
		{h: "w", op: "lock"},
		{h: "r", op: "rlock", cancel: true, want: context.Canceled},
		{h: "r", op: "rlock", after: 200 * time.Millisecond, want: context.DeadlineExceeded},
		{op: "queue empty"},
		{h: "r", op: "go rlock"}, {h: "r", op: "queued"}, {h: "r", op: "cancel"},
		{h: "r", op: "done", want: context.Canceled},
		{op: "queue empty"},
		// The writer's lock is intact.
		{h: "w", op: "owner"}, {h: "w", op: "notlost"},
		{h: "r2", op: "tryrlock", locked: []string{"w"}},
		{h: "r", op: "runlock", want: dotlock.ErrNotHeld},
		{h: "w", op: "unlock"},
	}},
	{"WaitingWriterGoesFirst", []rwStep{
		{h: "r1", op: "rlock"},
		{h: "w", op: "go lock"}, {h: "w", op: "queued"},
		// A new reader may not join past the waiting writer; it is told why.
		{h: "r2", op: "tryrlock", locked: []string{"w"}},
		{h: "r2", op: "go rlock"}, {h: "r2", op: "queued"},
		{h: "r1", op: "runlock"},
		{h: "w", op: "done", newer: []string{"r1"}},
		{h: "r2", op: "pending"}, // queued behind the writer, which holds
		{h: "w", op: "readers", n: 0},
		{h: "w", op: "unlock"},
		{h: "r2", op: "done", newer: []string{"w"}},
		{h: "r2", op: "runlock"},
		{op: "queue empty"},
	}},
	{"CancelWaitingWriter", []rwStep{
		{h: "r1", op: "rlock"},
		{h: "w", op: "go lock"}, {h: "w", op: "queued"}, {h: "w", op: "cancel"},
		{h: "w", op: "done", want: context.Canceled},
		{op: "queue empty"},
		// No writer waits any more: readers join again.
		{h: "r2", op: "tryrlock"}, {h: "r2", op: "runlock"},
		{h: "r1", op: "runlock"},
		{h: "w", op: "trylock"}, {h: "w", op: "unlock"},
	}},
}

func TestRWInProcess(t *testing.T) {
	for _, c := range rwInProcess {
		t.Run(c.name, func(t *testing.T) {
			r := &rwRun{t: t, path: filepath.Join(testdir.New(t), "x.lock"), handles: map[string]*dotlock.RWMutex{},
				tok: map[string]uint64{}, holds: map[string]int{}, bg: map[string]*rwBackground{}}
			for i, s := range c.steps {
				r.step = fmt.Sprintf("step %d (%s %s)", i, s.h, s.op)
				r.do(s)
			}
		})
	}
}

// rwRun runs the steps of one TestRWInProcess case.
type rwRun struct {
	t       *testing.T
	path    string
	step    string // the step being done, for messages
	handles map[string]*dotlock.RWMutex
	tok     map[string]uint64 // each handle's last token
	holds   map[string]int    // holds of each handle
	bg      map[string]*rwBackground
}

// rwBackground is an RLock or Lock running on its own goroutine.
type rwBackground struct {
	op     string
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

func (r *rwRun) handle(name string) *dotlock.RWMutex {
	if r.handles[name] == nil {
		r.handles[name] = mustRW(r.t, r.path)
	}
	return r.handles[name]
}

func (r *rwRun) do(s rwStep) {
	t := r.t
	t.Helper()
	l := r.handle(s.h)
	switch s.op {
	case "rlock", "lock", "tryrlock", "trylock", "runlock", "unlock", "go rlock", "go lock", "done", "cancel":
		r.acquireRelease(s, l)
	case "pending":
		select {
		case err := <-r.bg[s.h].done:
			t.Fatalf("%s: the %s returned %v while it should wait", r.step, r.bg[s.h].op, err)
		default:
		}
	case "queued":
		mark := ".w."
		if r.bg[s.h].op == "rlock" {
			mark = ".r."
		}
		waitQueueEntry(t, r.path, mark)
	case "readers":
		if rs, err := l.Readers(); err != nil || len(rs) != s.n {
			t.Errorf("%s: Readers() = %v, %v; want %d", r.step, rs, err, s.n)
		}
	case "lost", "notlost":
		if isClosed(l.Lost()) != (s.op == "lost") {
			t.Errorf("%s: Lost() closed is %v, want %v", r.step, isClosed(l.Lost()), s.op == "lost")
		}
	case "owner": // the record at the path is h's exclusive one
		if o, err := l.Owner(); err != nil || o.Token != r.tok[s.h] || o.Mode != stale.ModeExclusive {
			t.Errorf("%s: Owner() = %v, %v; want %s's record (token %d)", r.step, o, err, s.h, r.tok[s.h])
		}
	case "queue empty":
		if q := queueLeft(r.path); len(q) > 0 {
			t.Errorf("%s: queue left behind: %v", r.step, q)
		}
	case "gone":
		for _, leftover := range []string{r.path, r.path + ".queue", r.path + ".break"} {
			if _, err := os.Lstat(leftover); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s left behind (%v)", r.step, leftover, err)
			}
		}
	default:
		t.Fatalf("%s: no such operation", r.step)
	}
}

// acquireRelease does a step that takes, waits for or gives up a hold,
// and checks its result.
func (r *rwRun) acquireRelease(s rwStep, l *dotlock.RWMutex) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if s.cancel {
		cancel()
	}
	if s.after > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), s.after)
		defer cancel()
	}
	start := time.Now() // before the deadline is set, which counts from then
	var err error
	switch s.op {
	case "rlock":
		err = l.RLock(ctx)
	case "lock":
		err = l.Lock(ctx)
	case "tryrlock":
		err = l.TryRLock()
	case "trylock":
		err = l.TryLock()
	case "runlock":
		err = l.RUnlock()
	case "unlock":
		err = l.Unlock()
	case "go rlock", "go lock":
		b := &rwBackground{op: strings.TrimPrefix(s.op, "go "), done: make(chan error, 1)}
		b.ctx, b.cancel = context.WithCancel(context.Background())
		t.Cleanup(b.cancel)
		go func() {
			if b.op == "rlock" {
				b.done <- l.RLock(b.ctx)
			} else {
				b.done <- l.Lock(b.ctx)
			}
		}()
		r.bg[s.h] = b
		return
	case "cancel":
		r.bg[s.h].cancel()
		return
	case "done":
		ctx = r.bg[s.h].ctx
		err = recv(t, r.bg[s.h].done, r.step)
	}
	if s.after > 0 && time.Since(start) < s.after {
		t.Errorf("%s: gave up after %v, before its deadline", r.step, time.Since(start))
	}
	r.result(s, l, ctx, err)
}

// result checks the error of an operation and keeps the handle's token.
func (r *rwRun) result(s rwStep, l *dotlock.RWMutex, ctx context.Context, err error) {
	t := r.t
	t.Helper()
	switch {
	case s.locked != nil:
		r.wantLocked(s, err)
		return
	case s.want == nil && err != nil:
		t.Fatalf("%s: %v", r.step, err)
	case s.want != nil && !errors.Is(err, s.want):
		t.Fatalf("%s = %v, want %v", r.step, err, s.want)
	case (s.want == context.Canceled || s.want == context.DeadlineExceeded) && err != ctx.Err():
		t.Errorf("%s = %v, want the context's own error %v", r.step, err, ctx.Err())
	case err != nil:
		return
	}
	if strings.HasSuffix(s.op, "unlock") {
		r.holds[s.h]--
		return
	}
	tok := l.Token()
	if s.fresh {
		if tok == 0 {
			t.Errorf("%s: token 0", r.step)
		}
		for h, old := range r.tok {
			if tok == old {
				t.Errorf("%s: token %d, want a new one (%s had it)", r.step, tok, h)
			}
		}
	}
	for _, h := range s.newer {
		if tok <= r.tok[h] {
			t.Errorf("%s: token %d, want above %s's %d", r.step, tok, h, r.tok[h])
		}
	}
	r.tok[s.h] = tok
	r.holds[s.h]++
}

// wantLocked checks that err is ErrLocked naming the holds of the
// handles s.locked.
func (r *rwRun) wantLocked(s rwStep, err error) {
	t := r.t
	t.Helper()
	o := lockedBy(t, err, r.path)
	if len(o) != len(s.locked) {
		t.Errorf("%s: names %v, want %d holders (%v)", r.step, o, len(s.locked), s.locked)
		return
	}
	held := func(tok uint64) bool {
		for x, n := range r.holds {
			if n > 0 && r.tok[x] == tok {
				return true
			}
		}
		return false
	}
	for _, h := range s.locked {
		// A handle that holds nothing is a waiter: named by a record of
		// this process that is no hold's.
		if !slices.ContainsFunc(o, func(o stale.Owner) bool {
			return o.PID == os.Getpid() && (r.holds[h] > 0 && o.Token == r.tok[h] || r.holds[h] == 0 && !held(o.Token))
		}) {
			t.Errorf("%s: names %v, want %s (token %d) among them", r.step, o, h, r.tok[h])
		}
	}
}

// TestRWQueuedReaderAdmittedWhenWriterGivesUp: a reader that queued behind
// a waiting writer is admitted to the group holding the lock once that
// writer gives up — not left waiting while later readers join past it.
// (While readers keep the group alive, it would wait forever.)
func TestRWQueuedReaderAdmittedWhenWriterGivesUp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testdir.New(t), "x.lock")
	r1, r2, r3, w := mustRW(t, path), mustRW(t, path), mustRW(t, path), mustRW(t, path)
	if err := r1.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	defer r1.RUnlock()
	wctx, cancel := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Lock(wctx) }()
	waitQueueEntry(t, path, ".w.")
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	rdone := make(chan error, 1)
	go func() { rdone <- r2.RLock(rctx) }()
	waitQueueEntry(t, path, ".r.")
	cancel()
	if err := recv(t, wdone, "cancelled writer"); err != context.Canceled {
		t.Fatalf("cancelled Lock = %v", err)
	}
	// A later reader joins at once...
	joined := r3.TryRLock() == nil
	if joined {
		defer r3.RUnlock()
	}
	// ...and so must the one that queued earlier, while r1 still holds.
	select {
	case err := <-rdone:
		if err != nil {
			t.Fatalf("queued reader: %v", err)
		}
		r2.RUnlock()
	case <-time.After(5 * time.Second):
		q := queueLeft(path)
		rcancel()
		<-rdone
		t.Errorf("a reader queued behind a writer that gave up was still waiting 5s later while the group held "+
			"(a later reader joined past it: %v); queue: %v", joined, q)
	}
}

// TestRWMissingAnchorRepaired: a group whose anchor record is gone (its
// last reader crashed while dissolving it, after moving the anchor out)
// still has a living reader. Once the directory has been seen without a
// record for the grace period, the anchor is put back, not the lock
// broken: a new reader joins the group, a writer waits for both, and then
// gets a token above theirs.
func TestRWMissingAnchorRepaired(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testdir.New(t), "x.lock")
	grace := dotlock.WithGrace(50 * time.Millisecond)
	r1, r2, w := mustRW(t, path, grace), mustRW(t, path, grace), mustRW(t, path, grace)
	if err := r1.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(path, "owner")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r2.RLock(rctx); err != nil {
		t.Fatalf("RLock beside a living reader whose group lost its anchor: %v", err)
	}
	t1, t2 := r1.Token(), r2.Token()
	o, err := r2.Owner()
	if err != nil || o.Mode != stale.ModeShared || o.Token < max(t1, t2) {
		t.Errorf("Owner() = %+v, %v; want a repaired shared anchor with a token of at least %d", o, err, max(t1, t2))
	}
	if o := lockedBy(t, w.TryLock(), path); len(o) != 2 {
		t.Errorf("TryLock names %v, want the two readers", o)
	}
	if err := r1.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if err := r2.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if err := w.TryLock(); err != nil {
		t.Fatalf("TryLock after both readers left: %v", err)
	}
	if tok := w.Token(); tok <= max(t1, t2) {
		t.Errorf("writer token %d, want above the readers' %d and %d", tok, t1, t2)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRequeuedWaiterNotDroppedAgain: a scheduler drops a queued waiter
// whose record it judged stale (a remote waiter whose heartbeat stood still
// for the lease); the waiter, alive, queues again. Its new record must
// count as new, not inherit the age of the one dropped and be dropped at
// once, again and again: the waiter never got the free lock (seen under
// Wine, where a waiter's beats came late, as TestSuite/LeaseLoss waiting
// 30 s after its own break).
//
// Here b judges every process remote (its checker thinks it runs on
// another host), so it judges its own queue record too, and it never
// heartbeats it: once it has broken a's lapsed lock, it drops its own
// record, and then must still get the lock.
func TestRequeuedWaiterNotDroppedAgain(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	elsewhere := locktest.ElsewhereChecker(t)
	a, err := lockdir.New(path, dotlock.WithHeartbeat(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := lockdir.New(path, lockcore.WithChecker(elsewhere), dotlock.WithStaleAfter(100*time.Millisecond),
		dotlock.WithHeartbeat(time.Hour), dotlock.WithPoll(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.TryLock(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Lock(ctx); err != nil {
		t.Fatalf("Lock after breaking a lapsed holder, own queue record judged stale: %v; queue: %v", err, queueLeft(path))
	}
	if err := a.Unlock(); !errors.Is(err, dotlock.ErrLost) {
		t.Errorf("Unlock of the broken hold = %v, want ErrLost", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestRWTryLockNamesHoldersWhileQueued: TryLock's error names who holds the
// lock also when waiters are queued.
func TestRWTryLockNamesHoldersWhileQueued(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testdir.New(t), "x.lock")
	r, w := mustRW(t, path), mustRW(t, path)
	if err := r.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Lock(wctx) }()
	defer func() {
		cancel()
		<-wdone
		r.RUnlock()
	}()
	waitQueueEntry(t, path, ".w.")
	plain, err := lockdir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	o := lockedBy(t, plain.TryLock(), path)
	if !slices.ContainsFunc(o, func(o stale.Owner) bool { return o.Token == r.Token() }) {
		t.Errorf("TryLock while a reader holds and a writer queues names %v; want the reader (token %d) among them", o, r.Token())
	}
}

// TestRWWriterDoesNotPassQueue: a writer that finds waiters queued does not
// take a free lock past them (S2); it hands the lock to them instead. The
// queue is made by hand, in the documented format (<seq>.<w|r>.<uuid>), with
// a record of this live process: a reader about to be handed the lock.
func TestRWWriterDoesNotPassQueue(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	me, err := stale.Self(0, stale.ModeShared, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path+".queue", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path+".queue", "00000000000000000001.r."+me.UUID), me.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	plain, err := lockdir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	err = plain.TryLock()
	if err == nil {
		plain.Unlock()
		t.Fatal("TryLock took the free lock past a queued reader")
	}
	lockedBy(t, err, path)
	// The lock went to the queued reader.
	rs, err := plain.Owner()
	if err != nil || rs.Mode != stale.ModeShared {
		t.Fatalf("Owner() = %v, %v; want the anchor of a group handed to the queued reader", rs, err)
	}
	readers, err := mustRW(t, path).Readers()
	if err != nil || len(readers) != 1 || readers[0].UUID != me.UUID || readers[0].Token == 0 {
		t.Errorf("Readers() = %v, %v; want the queued reader (%s) with a token", readers, err, me.UUID)
	}
	if q := queueLeft(path); len(q) > 0 {
		t.Errorf("queue left behind: %v", q)
	}
}

// BenchmarkRW: uncontended shared and exclusive acquire+release, and a
// shared acquire+release beside 100 other shared holds (O(1) in them).
func BenchmarkRW(b *testing.B) {
	ctx := context.Background()
	b.Run("rlock-runlock", func(b *testing.B) {
		l := mustRW(b, filepath.Join(testdir.New(b), "x.lock"))
		b.ReportAllocs()
		for b.Loop() {
			if err := l.RLock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := l.RUnlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lock-unlock", func(b *testing.B) {
		l := mustRW(b, filepath.Join(testdir.New(b), "x.lock"))
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// With other readers holding, a reader's RLock+RUnlock should cost the
	// same whatever their number (compare allocs/op, which load does not
	// blur); the 1000 case makes any O(readers) step plain.
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("rlock-with-%d-readers", n), func(b *testing.B) {
			path := filepath.Join(testdir.New(b), "x.lock")
			others := mustRW(b, path)
			for range n {
				if err := others.RLock(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.Cleanup(func() {
				for range n {
					others.RUnlock()
				}
			})
			l := mustRW(b, path)
			b.ReportAllocs()
			for b.Loop() {
				if err := l.RLock(ctx); err != nil {
					b.Fatal(err)
				}
				if err := l.RUnlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWriteFileWhileUnlockedReaderHasItOpen: a program that reads the data
// file without a lock (with os.Open, which on Windows does not share the
// file for deletion) holds it open for a moment; WriteFile must replace the
// file once it lets go, not fail (Windows refuses the rename meanwhile).
func TestWriteFileWhileUnlockedReaderHasItOpen(t *testing.T) {
	data := filepath.Join(testdir.New(t), "data.txt")
	if err := os.WriteFile(data, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		time.Sleep(100 * time.Millisecond) // the reader's moment, not synchronisation
		f.Close()
	}()
	if err := lockdir.WriteFile(context.Background(), data, []byte("new"), 0o644); err != nil {
		t.Fatalf("WriteFile while an unlocked reader had the file open: %v", err)
	}
	<-closed
	if got, err := os.ReadFile(data); err != nil || string(got) != "new" {
		t.Errorf("after WriteFile the file holds %q, %v; want %q", got, err, "new")
	}
}

// A reader that leaves while others hold leaves the group's anchor where
// it is: it once moved it to P.last and back when the rmdir failed, which
// cost two renames, a read and a second listing, and took the record of
// the last hold before the group out of P.last.
func TestReaderLeavingBesideOthersKeepsLastRecord(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testdir.New(t), "x.lock")
	handle := func() *dotlock.RWMutex {
		l, err := lockdir.New(path)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	w, a, b := handle(), handle(), handle()
	if err := w.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path + ".last")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*dotlock.RWMutex{a, b} {
		if err := r.RLock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	anchor, err := os.ReadFile(filepath.Join(path, "owner"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(path + ".last"); err != nil || string(after) != string(before) {
		t.Errorf("P.last after a reader left beside another: %q, %v; want the writer's record as before", after, err)
	}
	if now, err := os.ReadFile(filepath.Join(path, "owner")); err != nil || string(now) != string(anchor) {
		t.Errorf("anchor after a reader left beside another: %q, %v; want it unchanged", now, err)
	}
	if err := a.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if last, err := os.ReadFile(path + ".last"); err != nil || string(last) != string(anchor) {
		t.Errorf("P.last after the last reader left: %q, %v; want the group's anchor", last, err)
	}
}
