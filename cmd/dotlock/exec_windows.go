package main

import (
	"os"
	"os/exec"
)

// execHeld: Windows cannot replace a process with another.
func execHeld(h *handle, cmd *exec.Cmd, f *lockFlags, stderr *os.File) int {
	h.release(f.shared)
	return fail(stderr, exitUsage, "-F/--no-fork needs exec, which Windows does not have: drop -F")
}
