package main

import "syscall"

// commandAttr makes the command get SIGTERM if dotlock dies without
// releasing (SIGKILL): the lock it ran under is then reclaimable, and the
// command should not run on unprotected. The signal follows the thread that
// started the command, which main locks.
func commandAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
