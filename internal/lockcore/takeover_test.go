package lockcore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// plantDeadHolder writes at path the record of a hold with token that
// names a dead process of this host (this PID, reused: another start
// time), and returns it.
func plantDeadHolder(t *testing.T, path string, token uint64) []byte {
	t.Helper()
	o, err := stale.Self(token, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.StartID = "1"
	rec := o.Marshal()
	if err := os.WriteFile(path, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	return rec
}

// guardAtCreates records, for each create the lock's attempts make,
// whether the breaker guard stood at that moment; then runs then (nil:
// nothing) with the create's index.
type guardAtCreates struct {
	mu    sync.Mutex
	guard string
	at    []bool
	then  func(i int) error
}

func (g *guardAtCreates) hook() error {
	_, err := os.Lstat(g.guard)
	g.mu.Lock()
	g.at = append(g.at, err == nil)
	i := len(g.at) - 1
	g.mu.Unlock()
	if g.then != nil {
		return g.then(i)
	}
	return nil
}

func (g *guardAtCreates) seen() []bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bool(nil), g.at...)
}

// A waiter that breaks a dead holder's lock file takes the path while it
// still holds the guard (B6): its one create is made with P.break
// standing, so no acquirer can take the path between the break and its
// create, and its token follows the dead holder's, which the break
// published in P.last. Before B6 the break dropped the guard and a new
// attempt took the path (A1..A6), reading P.last and its entry back.
func TestBreakerTakesOverUnderGuard(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	plantDeadHolder(t, path, 30)
	g := &guardAtCreates{guard: path + guardSuffix}
	l := newFileLock(t, path, WithCreateHook(g.hook))
	if err := l.TryLock(); err != nil {
		t.Fatalf("TryLock over a dead holder's lock: %v", err)
	}
	if tok := l.Token(); tok != 31 {
		t.Errorf("token %d after breaking token 30's dead holder, want 31", tok)
	}
	if at := g.seen(); len(at) != 1 || !at[0] {
		t.Errorf("the breaker's creates (true: made under the guard): %v; want one, under the guard", at)
	}
	if _, err := os.Lstat(path + guardSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("guard after the takeover: %v; want it gone", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	last, err := os.ReadFile(path + ".last")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := stale.Parse(last); err != nil || o.Token != 31 {
		t.Errorf("P.last after the release: token %d (%v), want 31", o.Token, err)
	}
}

// A takeover whose create's reply is lost (P6) leaves an empty entry that
// no one knows is its own: it is judged as any, broken once the grace
// period has passed, and the next holder's token still follows the dead
// holder's.
func TestTakeoverReplyLost(t *testing.T) {
	const grace = 100 * time.Millisecond
	path := filepath.Join(testdir.New(t), "x.lock")
	plantDeadHolder(t, path, 30)
	g := &guardAtCreates{guard: path + guardSuffix, then: func(i int) error {
		if i == 0 {
			return syscall.EIO
		}
		return nil
	}}
	l := newFileLock(t, path, WithCreateHook(g.hook), WithGrace(grace))
	if err := l.TryLock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock whose takeover lost its create's reply: %v; want ErrLocked (an empty entry, being written)", err)
	}
	if data, err := os.ReadFile(path); err != nil || len(data) != 0 {
		t.Fatalf("the lost create's entry: %q, %v; want it there, empty", data, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Lock(ctx); err != nil {
		t.Fatalf("Lock after the lost reply: %v", err)
	}
	if tok := l.Token(); tok != 31 {
		t.Errorf("token %d after the dead holder's 30, want 31", tok)
	}
	if at := g.seen(); len(at) != 2 || !at[0] || at[1] {
		t.Errorf("creates (true: under the guard): %v; want the takeover's, then an attempt's after the empty entry was broken", at)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// A takeover whose record was written only after the guard's deadline
// (the process paused) proves nothing: another host may have taken the
// guard for abandoned meanwhile, broken the entry while it was empty, and
// taken the lock. It is then verified as any attempt's entry (A5, A6):
// here the entry was moved away and another's live record stands at P, so
// TryLock must say ErrLocked, not hold.
func TestTakeoverPastDeadlineVerified(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	plantDeadHolder(t, path, 30)
	clk := &stepClock{t: time.Now()}
	live, err := stale.Self(40, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var l *Lock
	g := &guardAtCreates{guard: path + guardSuffix, then: func(i int) error {
		if i == 0 { // paused past the deadline; meanwhile a host broke our entry and holds
			clk.add(l.guardLease())
			if err := os.Rename(path, path+".moved"); err != nil {
				return err
			}
			return os.WriteFile(path, live.Marshal(), 0o644)
		}
		return nil
	}}
	l = newFileLock(t, path, WithCreateHook(g.hook), WithClock(clk))
	err = l.TryLock()
	if err == nil {
		l.Unlock()
		t.Fatal("TryLock held a lock whose takeover was written past the guard's deadline, its entry moved away and another's record at the path")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock: %v; want ErrLocked (another's live record)", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != string(live.Marshal()) {
		t.Errorf("the live holder's record: %q, %v; want it untouched", data, err)
	}
}

// A takeover's create that returns past the guard's deadline (the breaker
// paused, or its create hung behind a partition) may come after another
// host counted the guard abandoned, held the path and left it: P.last
// then holds a greater token than the victim's. The entry is taken as
// A1's, from A3 on (a review found the takeover holding 31 after 32).
func TestTakeoverCreateLandsLate(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	plantDeadHolder(t, path, 30)
	clk := &stepClock{t: time.Now()}
	var l *Lock
	g := &guardAtCreates{guard: path + guardSuffix, then: func(i int) error {
		if i == 0 {
			clk.add(l.guardLease())
			plantDeadHolder(t, path+".last", 32) // 31 and 32 came and went
		}
		return nil
	}}
	l = newFileLock(t, path, WithCreateHook(g.hook), WithClock(clk))
	if err := l.TryLock(); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if tok := l.Token(); tok != 33 {
		t.Errorf("token %d after 32 was published, want 33 (P7)", tok)
	}
}

// The victim's token is the chain's highest only if the chain is its
// slot alone: a slot after it (another user's, in a sticky directory) may
// hold a greater one — a victim that started again at 1 after P.last was
// removed by hand, a record planted with a low token. A3 reads the chain;
// there is no takeover then.
func TestTakeoverReadsLongerChain(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	plantDeadHolder(t, path, 1)
	plantDeadHolder(t, path+".last.1", 50)
	l := newFileLock(t, path)
	if err := l.TryLock(); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if tok := l.Token(); tok != 51 {
		t.Errorf("token %d with P.last.1 at 50, want 51 (P7)", tok)
	}
}
