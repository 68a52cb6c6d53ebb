package lockcore

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// A lock name too long for the names derived from it used to be accepted:
// the entry was made, then the guard could not be ("open P.break: file name
// too long"), and the entry stayed. New refuses it at once.
func TestLongLockName(t *testing.T) {
	if n := len(tempName("x")) - 1; n != len(goneForm) {
		t.Fatalf("tempName adds %d bytes, derivedNames assumes %d", n, len(goneForm))
	}
	dir := testdir.New(t)
	news := map[string]func(abs string) Store{
		"file": func(abs string) Store { return NewFileStore(abs) },
		"dir":  func(abs string) Store { return NewDirStore(abs) },
	}
	for kind, newStore := range news {
		_, err := New(filepath.Join(dir, strings.Repeat("a", 250)), newStore)
		var pe *fs.PathError
		if !errors.Is(err, syscall.ENAMETOOLONG) || !errors.As(err, &pe) || pe.Op != "new" {
			t.Fatalf("%s: New with a 250-byte name: %v; want an *fs.PathError (op new) wrapping ENAMETOOLONG", kind, err)
		}
		t.Logf("%s: %v", kind, err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("New left %v behind", names)
	}
	// The longest name that fits works, including the longest derived name
	// (P.break.gone.*: a shared hold takes and releases the guard); one
	// byte more is refused.
	fit := nameMax(dir) - len(guardSuffix+goneForm)
	if _, err := New(filepath.Join(dir, strings.Repeat("b", fit+1)), news["dir"]); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("New with a %d-byte name: %v; want ENAMETOOLONG", fit+1, err)
	}
	path := filepath.Join(dir, strings.Repeat("b", fit))
	fl := newFileLock(t, path)
	if err := fl.TryLock(); err != nil {
		t.Fatal(err)
	}
	if err := fl.Unlock(); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + ".last")
	dl := newDirLock(t, path)
	if err := dl.TryRLock(); err != nil {
		t.Fatal(err)
	}
	if err := dl.RUnlock(); err != nil {
		t.Fatal(err)
	}
	if err := dl.TryLock(); err != nil {
		t.Fatal(err)
	}
	if err := dl.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// plantLast puts a last record with the given token at path's P.last.
func plantLast(t *testing.T, path string, token uint64) {
	t.Helper()
	o, err := stale.Self(token, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".last", o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantTokenMax checks that err refuses an acquisition for the token limit,
// and that nothing was left at the lock path.
func wantTokenMax(t *testing.T, what string, err error, path string) {
	t.Helper()
	var pe *fs.PathError
	if !errors.Is(err, errTokenMax) || !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("%s: %v; want an *fs.PathError for %s wrapping errTokenMax", what, err, path)
	}
	for _, p := range []string{path, path + guardSuffix, path + ".queue"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: %s left behind (%v)", what, p, err)
		}
	}
}

// P7: the token after 2^64-1 used to wrap to 0, which also means "no hold".
// An acquisition that would need it is refused, leaving nothing behind.
func TestTokenOverflowRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := testdir.New(t)
	for kind, l := range map[string]*Lock{
		"file": newFileLock(t, filepath.Join(dir, "f.lock")),
		"dir":  newDirLock(t, filepath.Join(dir, "d.lock")),
	} {
		plantLast(t, l.Path(), math.MaxUint64)
		wantTokenMax(t, kind+" TryLock", l.TryLock(), l.Path())
		wantTokenMax(t, kind+" Lock", l.Lock(ctx), l.Path())
		if kind == "dir" {
			wantTokenMax(t, "TryRLock", l.TryRLock(), l.Path())
			wantTokenMax(t, "RLock", l.RLock(ctx), l.Path())
		}
	}

	// A shared group advances its anchor's token in place (S1).
	path := filepath.Join(dir, "g.lock")
	plantLast(t, path, math.MaxUint64-1)
	r1, r2 := newDirLock(t, path), newDirLock(t, path)
	if err := r1.TryRLock(); err != nil {
		t.Fatal(err)
	}
	if tok := r1.Token(); tok != math.MaxUint64 {
		t.Fatalf("first reader's token %d, want 2^64-1", tok)
	}
	if err := r2.TryRLock(); !errors.Is(err, errTokenMax) {
		t.Fatalf("second reader: %v; want errTokenMax", err)
	}
	if rs, err := r1.Readers(); err != nil || len(rs) != 1 {
		t.Fatalf("readers %v (%v), want the first alone", rs, err)
	}
	if err := r1.RUnlock(); err != nil {
		t.Fatal(err)
	}
	wantTokenMax(t, "TryLock after the group", r2.TryLock(), path)

	// A lock handed to a queued waiter (S4).
	path = filepath.Join(dir, "q.lock")
	plantLast(t, path, math.MaxUint64-1)
	w1, w2 := newDirLock(t, path), newDirLock(t, path)
	if err := w1.TryLock(); err != nil {
		t.Fatal(err)
	}
	queued := make(chan struct{})
	w2.cfg.OnWait = func(error) {
		select {
		case <-queued:
		default:
			close(queued)
		}
	}
	done := make(chan error, 1)
	go func() { done <- w2.Lock(ctx) }()
	select {
	case <-queued:
	case err := <-done:
		t.Fatalf("waiter: %v while the lock is held", err)
	}
	if err := w1.Unlock(); err != nil {
		t.Fatal(err)
	}
	wantTokenMax(t, "queued Lock", <-done, path)
}
