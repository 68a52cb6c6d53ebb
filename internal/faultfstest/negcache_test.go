//go:build linux

package faultfstest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// TestCachedMissingLastKeepsTokens (P7): a client that looked P.last up
// before any hold had left keeps that answer for a while — the Linux SMB
// client a second, FUSE its negative timeout — and meanwhile another
// client's first hold leaves, making P.last. This client's next hold must
// still get a higher token than that hold's: its A3 must not read "no last
// record" from the cache and start tokens again. (Seen on SMB in the VM
// suite, for lock directories' waiters, which look P.last up while they
// wait.)
func TestCachedMissingLastKeepsTokens(t *testing.T) {
	const negative = 2 * time.Second
	for _, kind := range []string{"lockfile", "lockdir"} {
		t.Run(kind, func(t *testing.T) {
			a := MountT(t, Options{CacheTimeout: negative}) // caches lookups, a missing name's too
			b := mountAgain(t, a)
			open := func(f *FS) dotlock.Locker {
				path := filepath.Join(f.Mount, "x.lock")
				var l dotlock.Locker
				var err error
				if kind == "lockdir" {
					l, err = lockdir.New(path)
				} else {
					l, err = lockfile.New(path)
				}
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			// A looks P.last up while it is missing, as a waiter does.
			if _, err := os.Lstat(filepath.Join(a.Mount, "x.lock.last")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("P.last before any hold: %v, want it missing", err)
			}
			first := open(b)
			if err := first.TryLock(); err != nil {
				t.Fatal(err)
			}
			tok := first.Token()
			if err := first.Unlock(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(a.Mount, "x.lock.last")); !errors.Is(err, fs.ErrNotExist) {
				t.Skipf("this FUSE does not keep the missing name cached (%v): nothing to test", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*negative)
			defer cancel()
			next := open(a)
			start := time.Now()
			if err := next.Lock(ctx); err != nil {
				t.Fatal(err)
			}
			defer next.Unlock()
			t.Logf("the first hold's token %d; the next, on the caching client: %d, after %v", tok, next.Token(), time.Since(start).Round(time.Millisecond))
			if next.Token() <= tok {
				t.Fatalf("token %d after a hold with token %d: tokens started again (P7)", next.Token(), tok)
			}
		})
	}
}
