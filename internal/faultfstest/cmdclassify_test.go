//go:build linux

package faultfstest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/lockdir"
)

// TestLockDirGoneWhileClassified: named a Go program's lock directory, the
// command lists it to tell which format it is. A directory released
// meanwhile leaves the path free, and the command goes on as on a free
// path; it failed with the listing's ENOENT (exit 66), seen in
// cmd/dotlock's TestLockPidReclaimedWhenShellGone as a keeper released
// its dead shell's lock. Named P.dotlock (a lock by its name), the lock is
// taken at P.dotlock; named P, P is then the user's file, made empty as
// flock makes it, and locked beside it (P.dotlock).
func TestLockDirGoneWhileClassified(t *testing.T) {
	f := MountT(t, Options{})
	bin := buildDotlock(t)
	for _, name := range []string{"x.dotlock", "y.lock"} {
		t.Run(name, func(t *testing.T) {
			lock := filepath.Join(f.Mount, name)
			l, err := lockdir.New(lock)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Lock(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Long enough for the Unlock below to be done by the time
			// the listing goes on, even on a loaded machine.
			f.Set(1, Rule{Op: OpReaddir, Name: name, Action: Delay, Delay: 5 * time.Second, Times: 1})
			defer f.Clear()
			cmd := exec.Command(bin, "-n", lock, "true")
			var out strings.Builder
			cmd.Stderr = &out // read only after Wait
			startHeldAt(t, f, cmd, name)
			// The listing is held up now: release the lock under it.
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("dotlock -n on a lock directory released while it was listed: %v; want exit 0\n%s", err, out.String())
			}
			st, err := os.Lstat(lock)
			switch {
			case name == "x.dotlock" && err == nil:
				t.Errorf("%s after dotlock's run: %v; want it gone (released)", name, st.Mode())
			case name != "x.dotlock" && (err != nil || !st.Mode().IsRegular() || st.Size() != 0):
				t.Errorf("%s after dotlock's run: %v, %v; want the user's empty file", name, st, err)
			}
		})
	}
}

// TestLockDirListedGoneAgainAndAgain: a directory that the lstat finds
// but whose listing says ENOENT every time (a client's cache answering
// for one the server removed; here the fault filesystem) made the command
// look again without end. It now looks three times, then leaves the path
// to the engine, which finds the lock held (exit 1).
func TestLockDirListedGoneAgainAndAgain(t *testing.T) {
	f := MountT(t, Options{})
	bin := buildDotlock(t)
	lock := filepath.Join(f.Mount, "y.lock")
	l, err := lockdir.New(lock)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	f.Set(1, Rule{Op: OpReaddir, Name: "y.lock", Action: Fail, Errno: syscall.ENOENT})
	defer f.Clear()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", lock, "true")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("dotlock -n still running after 20 s (%d listings failed): looking again without end\n%s", len(f.Faults()), out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("dotlock -n on a held lock directory that cannot be listed: %v; want exit 1 (held)\n%s", err, out)
	}
	if n := len(f.Faults()); n != 3 {
		t.Errorf("%d listings of y.lock; want 3", n)
	}
}
