package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fdTarget is the lock for the file that this process's descriptor fd
// (inherited from the caller) is open on: the same derivation as for its
// path. It returns that path too.
func fdTarget(fd int, format string) (target, string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return target{}, "", &typeError{exitDataErr, fmt.Sprintf("%d: %s", fd, strerror(err))}
	}
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return target{}, "", &typeError{exitOSErr, fmt.Sprintf("%d: cannot see which file it is open on: %v", fd, err)}
	}
	if !strings.HasPrefix(path, "/") {
		return target{}, "", &typeError{exitDataErr, fmt.Sprintf("%d: open on %s, not on a file or directory: dotlock locks files by their path", fd, path)}
	}
	var lst unix.Stat_t
	if err := unix.Lstat(path, &lst); err != nil || lst.Dev != st.Dev || lst.Ino != st.Ino {
		return target{}, "", &typeError{exitDataErr, fmt.Sprintf("%d: the file it is open on (%s) was removed or replaced: dotlock derives the lock from the file's path", fd, path)}
	}
	t, err := checkPath(path, format)
	return t, path, err
}

// strerror is err as flock prints it ("Bad file descriptor").
func strerror(err error) string {
	s := err.Error()
	return strings.ToUpper(s[:1]) + s[1:]
}

// sameFile reports whether process pid's descriptor fd is the open file
// description this process has as mine (kcmp(2): what flock's lock belongs
// to); where kcmp is missing, whether it is open on path.
func sameFile(pid, fd, mine int, path string) bool {
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(pid), kcmpFile, uintptr(mine), uintptr(fd), 0)
	if errno == 0 {
		return r == 0
	}
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	return err == nil && p == path
}

// holderOf is the process the descriptor's lock is held for: the topmost
// of the caller and its parents that have fd, this process's fd (the same
// open file description), open (a subshell's
// redirection, a script's exec 9>FILE); 0 if the caller does not have it
// (its last command, exec'd: the descriptor closes as dotlock exits).
func holderOf(fd int, path string) int {
	holder := 0
	for pid, i := os.Getppid(), 0; pid > 1 && i < 128 && sameFile(pid, fd, fd, path); i++ {
		holder = pid
		var ok bool
		if pid, ok = parentOf(pid); !ok {
			break
		}
	}
	return holder
}

// closeOnExec keeps fd from the command (-o).
func closeOnExec(fd int) error {
	unix.CloseOnExec(fd)
	return nil
}

// kcmpFile is KCMP_FILE (linux/kcmp.h).
const kcmpFile = 0
