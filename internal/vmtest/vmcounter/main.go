// Command vmcounter is vmtest's cross-host lost-update check: it takes a
// dotlock lock n times and, while holding it, reads a counter file and
// writes it back plus one. Run on two hosts against one counter, the final
// value must be the total number of holds.
//
//	vmcounter -kind file|dir -lock PATH -counter PATH -n N
//
// It prints "hold I token T counter V" per hold and exits 1 at the first
// error, printing it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// locker is what lockfile's Mutex and lockdir's RWMutex share.
type locker interface {
	Lock(context.Context) error
	Unlock() error
	Token() uint64
}

func main() {
	kind := flag.String("kind", "file", "file (lockfile) or dir (lockdir)")
	lock := flag.String("lock", "", "lock path")
	counter := flag.String("counter", "", "counter file (must exist)")
	n := flag.Int("n", 10, "holds")
	wait := flag.Duration("wait", 2*time.Minute, "longest wait for one hold")
	flag.Parse()
	var l locker
	var err error
	if *kind == "dir" {
		l, err = lockdir.New(*lock)
	} else {
		l, err = lockfile.New(*lock)
	}
	if err != nil {
		fail("new: %v", err)
	}
	for i := 0; i < *n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *wait)
		err := l.Lock(ctx)
		cancel()
		if err != nil {
			fail("hold %d: lock: %v", i, err)
		}
		v, err := bump(*counter)
		if err != nil {
			fail("hold %d: %v", i, err)
		}
		fmt.Printf("hold %d token %d counter %d\n", i, l.Token(), v)
		if err := l.Unlock(); err != nil {
			fail("hold %d: unlock: %v", i, err)
		}
	}
}

// bump adds one to the number in file and returns the new value.
func bump(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("counter %q: %v", b, err)
	}
	return v + 1, os.WriteFile(file, []byte(strconv.Itoa(v+1)+"\n"), 0o644)
}

func fail(format string, args ...any) {
	fmt.Printf("error: "+format+"\n", args...)
	os.Exit(1)
}
