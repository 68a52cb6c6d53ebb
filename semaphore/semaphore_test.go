package semaphore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/semaphore"
)

func TestTryAcquireFull(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "licence")
	s, err := semaphore.New(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	if a.Index() == b.Index() {
		t.Fatalf("two holders of slot %d", a.Index())
	}
	_, err = s.TryAcquire()
	var le *dotlock.LockedError
	if !errors.Is(err, dotlock.ErrLocked) || !errors.As(err, &le) || len(le.Owners) != 2 {
		t.Fatalf("third TryAcquire of 2 slots: %v; want ErrLocked naming the 2 holders", err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	c, err := s.TryAcquire()
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if c.Index() != a.Index() {
		t.Errorf("got slot %d, want the freed %d", c.Index(), a.Index())
	}
	if c.Token() <= a.Token() {
		t.Errorf("token %d after the slot's earlier %d", c.Token(), a.Token())
	}
	if err := a.Release(); !errors.Is(err, dotlock.ErrNotHeld) {
		t.Errorf("second Release of a slot: %v, want ErrNotHeld", err)
	}
	// a's second Release did not release c, which holds the same slot.
	if err := c.Release(); err != nil {
		t.Errorf("Release of the slot's new holder: %v", err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestSizeDisagreement(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "licence")
	if _, err := semaphore.New(dir, 3); err != nil {
		t.Fatal(err)
	}
	_, err := semaphore.New(dir, 4)
	var pe *fs.PathError
	if err == nil || !errors.As(err, &pe) {
		t.Fatalf("New with 4 slots where 3 are recorded: %v; want a *fs.PathError", err)
	}
	if _, err := semaphore.New(dir, 3); err != nil {
		t.Fatalf("New with the recorded size after a refused one: %v", err)
	}
	for _, n := range []int{0, -1} {
		if _, err := semaphore.New(dir, n); err == nil {
			t.Errorf("New with %d slots: no error", n)
		}
	}
}

// A release through the same handle wakes its waiter at once, on every
// system (it polls once an hour here).
func TestWokenByReleaseInProcess(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "licence")
	s, err := semaphore.New(dir, 1, dotlock.WithPoll(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *semaphore.Slot, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		slot, err := s.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- slot
	}()
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	if slot := <-got; slot != nil {
		if slot.Token() <= held.Token() {
			t.Errorf("token %d after %d", slot.Token(), held.Token())
		}
		slot.Release()
	}
}

// A directory of the user's is no semaphore: refused at once, and left
// exactly as it was (nothing made in it, even for a moment that a listing
// would see).
func TestUsersDirectoryRefused(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := semaphore.New(dir, 2)
	var pe *fs.PathError
	if !errors.Is(err, dotlock.ErrNotLock) || !errors.As(err, &pe) {
		t.Fatalf("New on a user's directory: %v; want ErrNotLock in a *fs.PathError", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "report.txt" {
		t.Errorf("the user's directory now holds %v", ents)
	}
	if _, err := semaphore.New(filepath.Join(dir, "report.txt"), 2); !errors.Is(err, dotlock.ErrNotLock) {
		t.Errorf("New on a user's file: %v; want ErrNotLock", err)
	}
}

// Two first users with different counts, at once: never both pass
// (docs/PROTOCOL.md, "Counting lock": each lists after its own mkdir).
// Both refused is allowed; then the next try succeeds.
func TestSizeRace(t *testing.T) {
	base := testdir.New(t)
	for round := range 200 {
		dir := filepath.Join(base, strconv.Itoa(round))
		errs := make(chan error, 2)
		start := make(chan struct{})
		for _, n := range []int{2, 3} {
			go func() {
				<-start
				_, err := semaphore.New(dir, n)
				errs <- err
			}()
		}
		close(start)
		e1, e2 := <-errs, <-errs
		if e1 == nil && e2 == nil {
			t.Fatalf("round %d: users with 2 and 3 slots both passed", round)
		}
		if _, err := semaphore.New(dir, 2); err != nil && e1 != nil && e2 != nil {
			t.Fatalf("round %d: both refused, and a later New with 2: %v", round, err)
		}
	}
}
