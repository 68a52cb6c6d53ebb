package dotlock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// Lock waits until the lock is free, or until its context ends; the
// context's error comes back unchanged.
func ExampleMutex_Lock() {
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
func ExampleMutex_Unlock() {
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
func ExampleMutex_Token() {
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
func ExampleMutex_Owner() {
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

// Readers hold a lock directory together; a writer waits until they leave.
func ExampleRWMutex_RLock() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "catalog.lock")
	ctx := context.Background()

	r1, err := lockdir.New(path)
	if err != nil {
		log.Fatal(err)
	}
	r2, err := lockdir.New(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := r1.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := r2.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	readers, err := r1.Readers()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("readers holding:", len(readers))

	w, err := lockdir.New(path)
	if err != nil {
		log.Fatal(err)
	}
	err = w.TryLock()
	fmt.Println("writer refused:", errors.Is(err, dotlock.ErrLocked))

	r1.RUnlock()
	r2.RUnlock()
	if err := w.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("writer's token is above the readers':", w.Token() > r1.Token())
	w.Unlock()
	// Output:
	// readers holding: 2
	// writer refused: true
	// writer's token is above the readers': true
}
