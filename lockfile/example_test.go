package lockfile_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

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

// Lock waits until the lock is free, or until its context ends; the
// context's error comes back unchanged.
func ExampleLock_Lock() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "nightly.lock")

	holder, err := lockfile.New(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := holder.Lock(context.Background()); err != nil {
		log.Fatal(err)
	}

	waiter, err := lockfile.New(path)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = waiter.Lock(ctx)
	fmt.Println("gave up waiting:", err == context.DeadlineExceeded)

	holder.Unlock()
	if err := waiter.Lock(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("waiter holds it, token", waiter.Token())
	waiter.Unlock()
	// Output:
	// gave up waiting: true
	// waiter holds it, token 2
}

// Unlock is checked: a handle that holds nothing gets ErrNotHeld.
func ExampleLock_Unlock() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := lockfile.New(filepath.Join(dir, "x.lock"))
	if err != nil {
		log.Fatal(err)
	}
	if err := l.TryLock(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("first Unlock:", l.Unlock())
	err = l.Unlock()
	fmt.Println("second Unlock is ErrNotHeld:", errors.Is(err, dotlock.ErrNotHeld))
	// Output:
	// first Unlock: <nil>
	// second Unlock is ErrNotHeld: true
}

// The fencing token grows with every hold of a path, across handles,
// processes, crashes and takeovers: storage that remembers the highest
// token it has accepted can refuse a write from a holder that lost its
// lock (see examples/fencing).
func ExampleLock_Token() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := lockfile.New(filepath.Join(dir, "x.lock"))
	if err != nil {
		log.Fatal(err)
	}
	var tokens []uint64
	for range 3 {
		if err := l.TryLock(); err != nil {
			log.Fatal(err)
		}
		tokens = append(tokens, l.Token())
		if err := l.Unlock(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("tokens:", tokens)
	fmt.Println("after Unlock:", l.Token())
	// Output:
	// tokens: [1 2 3]
	// after Unlock: 0
}

// Owner reads the record at the lock path: who holds it, since when, with
// which token.
func ExampleLock_Owner() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := lockfile.New(filepath.Join(dir, "x.lock"))
	if err != nil {
		log.Fatal(err)
	}
	if err := l.TryLock(); err != nil {
		log.Fatal(err)
	}
	defer l.Unlock()
	o, err := l.Owner()
	if err != nil {
		log.Fatal(err)
	}
	host, _ := os.Hostname()
	fmt.Println("pid is ours:", o.PID == os.Getpid())
	fmt.Println("host is ours:", o.Host == host)
	fmt.Println("token:", o.Token, "mode:", o.Mode)
	// Output:
	// pid is ours: true
	// host is ours: true
	// token: 1 mode: exclusive
}
