package lockfile_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockfile"
)

// A lock taken with TryLock, and a second handle — as another process
// would be — refused with an error that names the holder.
func Example() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "report.lock")

	l, err := lockfile.New(path)
	if err != nil {
		log.Fatal(err) // *fs.PathError: empty path, missing directory, ...
	}
	if err := l.TryLock(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("held, token", l.Token())

	other, err := lockfile.New(path)
	if err != nil {
		log.Fatal(err)
	}
	err = other.TryLock()
	fmt.Println("second handle locked out:", errors.Is(err, dotlock.ErrLocked))
	var locked *dotlock.LockedError
	if errors.As(err, &locked) {
		holder := locked.Owners[0]
		fmt.Println("holder is this process:", holder.PID == os.Getpid(), "token", holder.Token)
	}

	if err := l.Unlock(); err != nil {
		log.Fatal(err)
	}
	if err := other.TryLock(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("second handle holds it now, token", other.Token())
	if err := other.Unlock(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// held, token 1
	// second handle locked out: true
	// holder is this process: true token 1
	// second handle holds it now, token 2
}
