//go:build linux

package faultfstest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestTryInterruptedBySignal: a SIGTERM that reaches `dotlock -n` while it
// takes the lock makes it give the lock back and exit 128+15, without
// running the command. Since -n watches for signals with no goroutine of
// its own (it looks right after the try), this pins that the look is
// made: the try is held up in the filesystem (a lookup of the last
// record, A3) while the signal comes.
func TestTryInterruptedBySignal(t *testing.T) {
	f := MountT(t, Options{})
	bin := buildDotlock(t)
	// The command is a program on the mount, so that its exec is seen (an
	// open of it): a command started and at once killed by the SIGTERM
	// passed on to it leaves no other trace.
	lock, prog := filepath.Join(f.Mount, "L"), filepath.Join(f.Mount, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.Set(1, Rule{Op: OpLookup, Name: "L.dotlock.last", Action: Delay, Delay: 3 * time.Second, Times: 1},
		Rule{Op: OpOpen, Name: "prog", Action: Delay}) // counted
	defer f.Clear()
	cmd := exec.Command(bin, "-n", lock, prog)
	startHeldAt(t, f, cmd, "L.dotlock.last")
	// The lookup is held up now, inside the try.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("dotlock -n after SIGTERM during the try: %v; want exit status %d", err, 128+int(syscall.SIGTERM))
	}
	if fired(f, "prog") {
		t.Errorf("the command was started although dotlock got SIGTERM before it had the lock")
	}
	if _, err := os.Lstat(lock + ".dotlock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock directory after dotlock gave up: %v; want it removed", err)
	}
}

// startHeldAt starts cmd and returns once a rule of f has fired on name:
// the command is held up there (a Delay), or has been through it.
func startHeldAt(t *testing.T, f *FS, cmd *exec.Cmd, name string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !fired(f, name); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s never reached %s", cmd.Path, name)
		}
	}
}

// buildDotlock builds the command into a temporary directory.
func buildDotlock(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "dotlock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dotlock/dotlock/cmd/dotlock").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dotlock: %v\n%s", err, out)
	}
	return bin
}

// fired reports whether a call on name has been logged by f's rules.
func fired(f *FS, name string) bool {
	for _, x := range f.Faults() {
		if x.Name == name {
			return true
		}
	}
	return false
}
