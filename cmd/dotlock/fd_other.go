//go:build !linux

package main

import "fmt"

// fdTarget: without Linux's /proc, dotlock cannot see which file the
// caller's descriptor is open on, nor watch it.
func fdTarget(fd int, format string) (target, string, error) {
	return target{}, "", &typeError{exitUsage, fmt.Sprintf("%d: the file descriptor forms need Linux (/proc): lock a path instead: dotlock --lock --pid $$ LOCKPATH ... dotlock -u LOCKPATH, or dotlock LOCKPATH COMMAND", fd)}
}

func sameFile(pid, fd, mine int, path string) bool { return false }

func holderOf(fd int, path string) int { return 0 }

func closeOnExec(fd int) error { return nil }
