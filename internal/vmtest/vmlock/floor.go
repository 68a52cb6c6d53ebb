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
// uncontended, and prints each one's median and 90th percentile.
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
		{"excl", func() error {
			f, err := os.OpenFile(excl, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			f.Close()
			return os.Remove(excl)
		}},
		{"mkdir", func() error {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			return os.Remove(dir)
		}},
		{"lockfile", func() error { return both(f.Lock(ctx), f.Unlock) }},
		{"lockdir", func() error { return both(d.Lock(ctx), d.Unlock) }},
		{"lockdir-shared", func() error { return both(d.RLock(ctx), d.RUnlock) }},
	}
	for _, r := range rounds {
		times := make([]time.Duration, c.n)
		for i := range times {
			begin := time.Now()
			if err := r.round(); err != nil {
				fail("%s: %v", r.name, err)
			}
			times[i] = time.Since(begin)
		}
		slices.Sort(times)
		fmt.Printf("floor %s %d %d\n", r.name, times[len(times)/2].Nanoseconds(), times[len(times)*9/10].Nanoseconds())
	}
}

// both returns err, or else what then returns.
func both(err error, then func() error) error {
	if err != nil {
		return err
	}
	return then()
}
