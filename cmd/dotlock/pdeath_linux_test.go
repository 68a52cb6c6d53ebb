package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// What README says of a SIGKILLed dotlock on Linux: its lock is free at
// once; the command gets SIGTERM, and one that handles or ignores it runs
// on without the lock, as do processes the command started (only the
// command is signalled).
func TestSIGKILLedDotlockCommandGetsSIGTERM(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")

	// Waiting for dotlock's exit (wait(2)) orders after the parent-death
	// signal: the kernel sends it as the thread that started the command
	// exits, before the process can be reaped.
	killDotlock := func(p *proc) {
		t.Helper()
		p.cmd.Process.Kill()
		if code := p.wait(); code != 128+int(syscall.SIGKILL) {
			t.Fatalf("dotlock: exit %d, want SIGKILL's: %s", code, p.err.text())
		}
	}
	// The lock is free while the command still runs.
	lockFree := func(what string) {
		t.Helper()
		r := dotlock(t, dir, "-n", lock, "sh", "-c", "echo other-ran").want(t, 0, "-n "+what)
		if !strings.Contains(r.stdout, "other-ran") {
			t.Fatalf("-n %s: the command did not run: %q", what, r.stdout)
		}
	}

	// A command that handles SIGTERM: its trap runs, and it goes on. The
	// trap ends the wait whenever it comes: a trapped signal interrupts
	// wait, and one that comes before it kills the sleep wait is for. The
	// shell says ready only once its child runs sleep: until the exec, the
	// child is a copy of the shell that catches SIGTERM and then forgets
	// it, which left the wait a minute long in CI.
	p := startDotlock(t, dir, lock, "sh", "-c",
		`trap 'echo got-TERM; kill $s' TERM; sleep 60 >/dev/null 2>&1 & s=$!; `+
			`until [ "$(cat /proc/$s/comm)" = sleep ]; do :; done; `+
			`echo ready; wait $s; echo running-on; read x; echo alive; exit 0`)
	p.out.wait(t, "command", "ready")
	killDotlock(p)
	p.out.wait(t, "command", "got-TERM")
	p.out.wait(t, "command", "running-on")
	lockFree("while a command that handled SIGTERM runs on")
	fmt.Fprintln(p.stdin)
	p.out.wait(t, "command", "alive")
	p.closeStdin()
	p.finish()

	// A command that ignores SIGTERM runs on.
	p = startDotlock(t, dir, lock, "sh", "-c", `trap '' TERM; echo ready; read x; echo alive; exit 0`)
	p.out.wait(t, "command", "ready")
	killDotlock(p)
	lockFree("while a command that ignores SIGTERM runs on")
	fmt.Fprintln(p.stdin)
	p.out.wait(t, "command", "alive")
	p.closeStdin()
	p.finish()

	// The command is a shell that does not handle SIGTERM: it ends, and
	// the process it was running goes on.
	p = startDotlock(t, dir, lock, "sh", "-c", `sleep 60 >/dev/null 2>&1 & echo "pids $$ $!"; wait`)
	var shPID, childPID int
	if _, err := fmt.Sscanf(p.out.wait(t, "command", "pids "), "pids %d %d", &shPID, &childPID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(childPID, syscall.SIGKILL) })
	killDotlock(p)
	eventually(t, "the shell (pid "+strconv.Itoa(shPID)+") ends of SIGTERM", func() bool { return processGone(shPID) })
	if processGone(childPID) {
		t.Fatalf("the shell's child (pid %d) was ended too", childPID)
	}
	lockFree("while the shell's child runs on")
	p.finish()
}
