package main

import "syscall"

// commandAttr makes the command get SIGTERM if dotlock dies without
// releasing (SIGKILL): the lock it ran under is then reclaimable. SIGTERM,
// not SIGKILL, so that it can clean up: one that ignores or handles it runs
// on unprotected, as do its children, which get nothing (README says so).
// The signal follows the thread that started the command, which
// startCommand locks for good.
func commandAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
