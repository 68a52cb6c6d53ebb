//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/dotlock/dotlock/internal/lockcore"
)

// execHeld is -F: the lock goes to a keeper for this process, which then
// becomes the command (same PID, so the keeper keeps it until it exits).
func execHeld(h *handle, cmd *exec.Cmd, f *lockFlags, stderr *os.File) int {
	lease := f.staleAfter
	if lease == 0 {
		lease = lockcore.DefaultStaleAfter
	}
	o, err := h.handOver(os.Getpid())
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if err := startKeeper(h, o, os.Getpid(), lease, f.shared, keeperWatch{}); err != nil {
		h.releaseFor(o)
		return fail(stderr, exitOSErr, "cannot start the heartbeat keeper: %v (the lock was released)", err)
	}
	err = commandUmask(func() error { return syscall.Exec(cmd.Path, cmd.Args, cmd.Env) })
	h.releaseFor(o)
	return fail(stderr, startCode(err), "failed to execute %s: %v", cmd.Args[0], err)
}
