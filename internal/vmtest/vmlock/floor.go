//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// floor times c.n rounds of each way to take and drop a lock in c.dir,
// uncontended, and prints each one's median and 90th percentile, and the
// calls a round sent the server (calls.go).
func floor(c config) {
	ctx := context.Background()
	f, err := lockfile.New(filepath.Join(c.dir, "floor-file.lock"))
	if err != nil {
		fail("%v", err)
	}
	d, err := lockdir.New(filepath.Join(c.dir, "floor-dir.lock"))
	if err != nil {
		fail("%v", err)
	}
	excl := filepath.Join(c.dir, "floor-excl")
	dir := filepath.Join(c.dir, "floor-mkdir")
	rounds := []struct {
		name  string
		round func() error
	}{
		// The floors write a record of dotlock's size, as bench/'s do: a
		// lock that names no owner is not what they stand for.
		{"excl", func() error {
			if err := create(excl); err != nil {
				return err
			}
			return os.Remove(excl)
		}},
		{"mkdir", func() error {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			if err := create(filepath.Join(dir, "owner")); err != nil {
				return err
			}
			return both(os.Remove(filepath.Join(dir, "owner")), func() error { return os.Remove(dir) })
		}},
		{"lockfile", func() error { return both(f.Lock(ctx), f.Unlock) }},
		{"lockdir", func() error { return both(d.Lock(ctx), d.Unlock) }},
		{"lockdir-shared", func() error { return both(d.RLock(ctx), d.RUnlock) }},
	}
	for _, r := range rounds {
		// Once first, so that what is counted is a lock taken again, as
		// the timed rounds are: the first round's lookups and the
		// handle's setup are not.
		if err := r.round(); err != nil {
			fail("%s: %v", r.name, err)
		}
		before := serverCalls()
		times := make([]time.Duration, c.n)
		for i := range times {
			begin := time.Now()
			if err := r.round(); err != nil {
				fail("%s: %v", r.name, err)
			}
			times[i] = time.Since(begin)
		}
		fmt.Println(callsLine(r.name, before, serverCalls(), c.n))
		slices.Sort(times)
		fmt.Printf("floor %s %d %d\n", r.name, times[len(times)/2].Nanoseconds(), times[len(times)*9/10].Nanoseconds())
	}
}

// create makes name with O_EXCL and writes a record's worth (1024 bytes)
// into it.
func create(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, 1024))
	return both(err, f.Close)
}

// both returns err, or else what then returns.
func both(err error, then func() error) error {
	if err != nil {
		return err
	}
	return then()
}
