package main

import (
	"path/filepath"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// The tests in dotlock_test.go drive dotlock with POSIX signals and sh; these
// cover on Windows what a script there relies on, with cmd.exe commands.
// "echo in&pause>nul" says it is inside the lock, then waits until its
// stdin (the test's pipe, through dotlock) is closed.
const holdCmd = "echo in&pause>nul"

// The command's exit status is dotlock's, and the lock is free afterwards.
func TestWindowsRunAndRelease(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	dotlock(t, dir, lock, "cmd", "/c", "exit 3").want(t, 3, "command exiting 3")
	dotlock(t, dir, "--status", lock).want(t, 1, "status after the run")
	dotlock(t, dir, "-n", lock, "cmd", "/c", "exit 0").want(t, 0, "-n on a free lock")
}

// While one run holds the lock, -n fails at once; after it ends, the lock is
// free.
func TestWindowsExclusion(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	a := startDotlock(t, dir, lock, "cmd", "/c", holdCmd)
	a.out.wait(t, "A", "in")
	dotlock(t, dir, "-n", lock, "cmd", "/c", "exit 0").want(t, 1, "-n while A holds")
	dotlock(t, dir, "--status", lock).want(t, 0, "status while A holds")
	a.closeStdin()
	if code := a.finish(); code != 0 {
		t.Fatalf("A: exit %d: %s", code, a.err.text())
	}
	dotlock(t, dir, "--status", lock).want(t, 1, "status after A")
}

// A dotlock killed with TerminateProcess leaves its lock with a dead
// holder, which the next run on this host breaks at once. (Its command
// runs on: Windows has no parent-death signal.)
func TestWindowsKilledHolder(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	a := startDotlock(t, dir, lock, "cmd", "/c", holdCmd)
	a.out.wait(t, "A", "in")
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	a.wait()
	t.Cleanup(a.closeStdin) // ends the orphaned command
	dotlock(t, dir, "-n", lock, "cmd", "/c", "exit 0").want(t, 0, "-n over a killed holder's lock")
	dotlock(t, dir, "--status", lock).want(t, 1, "status after")
}
