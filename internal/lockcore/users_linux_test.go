package lockcore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testusers"
	"github.com/dotlock/dotlock/stale"
)

// usersHelper, set in a re-exec'd test binary, makes TestForeignErrorWraps
// the helper: it takes the lock at its value, as the user it runs as.
const usersHelper = "DOTLOCK_USERS_HELPER"

// TestForeignErrorWraps: a lock that alice may not remove — a record of
// bob's in a sticky directory naming PID 1 (live, but not bob's: not proven
// alive) — fails TryLock at once with an *fs.PathError that matches
// fs.ErrPermission and holds a *ForeignError naming bob.
func TestForeignErrorWraps(t *testing.T) {
	if path := os.Getenv(usersHelper); path != "" {
		foreignHelper(t, path)
		return
	}
	alice, bob := testusers.Two(t)
	o, err := stale.Self(7, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p1, err := (stale.SystemProcesses{}).Lookup(1)
	if err != nil || !p1.Exists {
		t.Skipf("PID 1: %v", err)
	}
	o.PID, o.StartID = 1, p1.StartID
	lock := filepath.Join(testusers.Dir(t, 0o1777, ""), "x.lock")
	if err := os.WriteFile(lock, o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(lock, int(bob.UID), int(bob.GID)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := testusers.Command(ctx, alice, 0o022, testusers.Exe(t), "-test.run=^TestForeignErrorWraps$", "-test.v")
	cmd.Env = append(cmd.Env, usersHelper+"="+lock, fmt.Sprintf("WANT_UID=%d", bob.UID))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as alice: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "TryLock after") {
		t.Fatalf("the helper did not run:\n%s", out)
	}
	t.Logf("helper as alice:\n%s", out)
}

func foreignHelper(t *testing.T, path string) {
	l := newFileLock(t, path)
	start := time.Now()
	err := l.TryLock()
	t.Logf("TryLock after %v: %v", time.Since(start), err)
	var pe *fs.PathError
	var fe *ForeignError
	switch {
	case err == nil:
		t.Fatal("took a lock it may not remove")
	case !errors.As(err, &pe) || !errors.Is(err, fs.ErrPermission):
		t.Errorf("%T %v: want an *fs.PathError matching fs.ErrPermission", err, err)
	case !errors.As(err, &fe) || fmt.Sprint(fe.UID) != os.Getenv("WANT_UID") || fe.Name != path:
		t.Errorf("%v: want a *ForeignError naming %s and uid %s", err, path, os.Getenv("WANT_UID"))
	}
}
