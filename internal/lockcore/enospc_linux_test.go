package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// On a full filesystem the entry is made but its record cannot be written
// (A4), nor a guard's. TryLock and Lock with a 3 s context used to take the
// lease (30 s: cleanups retried, ignoring the caller's context) and leave
// an empty P and P.break, which the next caller had to wait out one after
// the other. Now cleanups end with the caller's context (TryLock's within
// cleanupBound), the guard is removed, and what is left (an empty entry
// that could not be given up) is reclaimed by the grace rules (P5).
func TestENOSPCBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount a small tmpfs")
	}
	const grace = time.Second
	for _, kind := range []string{"file", "dir"} {
		mnt := testdir.New(t)
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
			t.Skipf("cannot mount a tmpfs: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
		newLock := func(path string) *Lock {
			if kind == "file" {
				return newFileLock(t, path, WithGrace(grace))
			}
			return newDirLock(t, path, WithGrace(grace))
		}
		try, wait := filepath.Join(mnt, "try.lock"), filepath.Join(mnt, "wait.lock")
		fill := fillUp(t, mnt)
		start := time.Now()
		err := newLock(try).TryLock()
		wantENOSPC(t, kind+" TryLock", err, time.Since(start), try)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		start = time.Now()
		err = newLock(wait).Lock(ctx)
		cancel()
		wantENOSPC(t, kind+" Lock (3 s)", err, time.Since(start), wait)
		if kind == "dir" {
			start = time.Now()
			err = newLock(try).TryRLock()
			wantENOSPC(t, "TryRLock", err, time.Since(start), try)
		}
		if err := os.Remove(fill); err != nil {
			t.Fatal(err)
		}
		// What is left, if anything, does not block the next caller.
		for _, path := range []string{try, wait} {
			ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
			l := newLock(path)
			start = time.Now()
			err = l.Lock(ctx)
			cancel()
			took := time.Since(start)
			t.Logf("%s: with space again, Lock of %s took %v", kind, filepath.Base(path), took.Round(time.Millisecond))
			if err != nil || took > grace+3*time.Second {
				t.Fatalf("%s: with space again, Lock took %v: %v; want success within the grace period (%v) and slack", kind, took, err, grace)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fillUp fills the filesystem at dir and returns the file that does it.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "fill")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return name
		}
	}
}

func wantENOSPC(t *testing.T, what string, err error, took time.Duration, path string) {
	t.Helper()
	t.Logf("%s: %v after %v", what, err, took.Round(time.Millisecond))
	var pe *fs.PathError
	if !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) {
		t.Errorf("%s: %v; want an *fs.PathError wrapping ENOSPC", what, err)
	}
	if took > 10*time.Second {
		t.Errorf("%s took %v; want about its bound (a few seconds)", what, took)
	}
	// The cleanup the call gave up goes on in the background (cleanup): it
	// may be in a guard cycle as the call returns, but no guard stays. A
	// guard left behind would stay for the grace period (1 s) at least,
	// until someone broke it; a cycle's lasts milliseconds.
	if !guardGoes(path, 300*time.Millisecond) {
		t.Errorf("%s left the guard %s behind", what, path+guardSuffix)
	}
}

// guardGoes reports whether the guard of the lock at path is absent at
// some moment within d.
func guardGoes(path string, d time.Duration) bool {
	for end := time.Now().Add(d); ; time.Sleep(time.Millisecond) {
		if _, err := os.Lstat(path + guardSuffix); errors.Is(err, fs.ErrNotExist) {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}
