//go:build unix

package main

import (
	"os"
	"syscall"
)

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// unblock lets a reader blocked opening the named pipe at path go on (it
// reads end of file); it does nothing if no one is waiting.
func unblock(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}
