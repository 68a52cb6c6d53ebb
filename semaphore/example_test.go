package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/semaphore"
)

// Two slots: two holders at once, and a third waits (or, trying, is told
// every slot is held).
func Example() {
	dir, err := os.MkdirTemp("", "semaphore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sem, err := semaphore.New(filepath.Join(dir, "licence"), 2)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	a, err := sem.Acquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	b, err := sem.Acquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	_, err = sem.TryAcquire()
	var le *dotlock.LockedError
	fmt.Println(errors.Is(err, dotlock.ErrLocked), errors.As(err, &le) && le.Cause == dotlock.AllSlotsHeld, len(le.Owners))
	if err := a.Release(); err != nil {
		log.Fatal(err)
	}
	c, err := sem.TryAcquire()
	fmt.Println(err, c.Index() == a.Index(), c.Token() > a.Token())
	b.Release()
	c.Release()
	// Output:
	// true true 2
	// <nil> true true
}
