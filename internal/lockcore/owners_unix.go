//go:build unix

package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// ownerOf is the uid of the file name (not following a symlink).
func ownerOf(name string) (int, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(name, &st); err != nil {
		return 0, false
	}
	return int(st.Uid), true
}

// unwrapAll is the errno inside err, if there is one.
func unwrapAll(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// explainRename says whose file it is when a rename is refused because of
// another user's file: the source, or else the target it would replace.
func explainRename(from, to string, errno error) error {
	if errno != syscall.EPERM && errno != syscall.EACCES {
		return errno
	}
	if foreignFile(from) {
		return explainForeign(from, errno)
	}
	if foreignFile(to) {
		return explainForeign(to, errno)
	}
	return errno
}

// CanSignal fails, matching fs.ErrPermission, for a process this one could
// not signal (another user's, unless this one is root): a lock handed to it
// (HandOver, dotlock lock --pid) would be attributed to it for as long as it
// runs, and neither this user nor its own could tell why.
func CanSignal(pid int) error {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("pid %d is another user's process, which this one may not signal: %w", pid, fs.ErrPermission)
	}
	return nil
}
