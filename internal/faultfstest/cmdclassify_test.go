//go:build linux

package faultfstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(20 * time.Second); !fired(f, name); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatal("dotlock never listed " + name)
				}
			}
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
