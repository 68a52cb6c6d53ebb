package dotlock_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockfile"
)

// Two handles on one lock, in one process, exclude each other as two
// processes do; the error says who is in the way.
func Example() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "job.lock")

	a, _ := lockfile.New(path, dotlock.WithStaleAfter(time.Minute))
	b, _ := lockfile.New(path, dotlock.WithStaleAfter(time.Minute))
	if err := a.TryLock(); err != nil {
		panic(err)
	}
	err = b.TryLock()
	var le *dotlock.LockedError
	fmt.Println(errors.Is(err, dotlock.ErrLocked), errors.As(err, &le), len(le.Owners))
	fmt.Println(a.Unlock(), b.TryLock(), b.Token())
	fmt.Println(errors.Is(a.Unlock(), dotlock.ErrNotHeld))
	b.Unlock()
	// Output:
	// true true 1
	// <nil> <nil> 2
	// true
}
