//go:build unix

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardSignals are caught by dotlock and passed on to the command.
var forwardSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// keeperIgnored are ignored by the keeper (which has no terminal anyway).
var keeperIgnored = []os.Signal{syscall.SIGINT, syscall.SIGHUP}

// defaultShell runs c when $SHELL is not set.
func defaultShell(c string) []string { return []string{"/bin/sh", "-c", c} }

func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGTERM)
}

// forward passes s on to the command. A SIGINT is not passed on while
// dotlock runs in the foreground of its terminal: then it came from the
// keyboard, and the terminal sent it to the command too (they share the
// process group), which should not get it twice.
func forward(p *os.Process, s os.Signal) {
	if s == syscall.SIGINT && terminalForeground() {
		return
	}
	p.Signal(s)
}

// terminalForeground reports whether dotlock's process group is the
// foreground group of its controlling terminal.
func terminalForeground() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// terminalWidth reports whether f is a terminal, and its width.
func terminalWidth(f *os.File) (int, bool) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}

// signalled reports the signal that ended a process, if one did.
func signalled(ps *os.ProcessState) (int, bool) {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal()), true
	}
	return 0, false
}

// keeperAttr detaches the keeper: its own session, no terminal.
func keeperAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// keeperDir is the keeper's working directory: one that pins no mount.
const keeperDir = "/"

// setUmask sets the process's umask and returns the previous one.
func setUmask(mask int) int { return syscall.Umask(mask) }

// oNoFollow: creating a lock path's file never follows a symlink there,
// nor blocks on a FIFO.
const oNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
