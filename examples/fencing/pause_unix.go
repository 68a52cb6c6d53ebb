//go:build unix

package main

import (
	"os"
	"syscall"
)

// pause stops p as a long GC pause, a frozen VM or a partition would.
func pause(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// resume lets p run again.
func resume(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
