//go:build windows

package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

const (
	oNoFollow = 0
	oNonblock = 0
)

// refuseSymlink checks before opening: Windows has no O_NOFOLLOW.
func refuseSymlink(name string) error {
	st, err := os.Lstat(name)
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 || st.Mode()&fs.ModeIrregular != 0 {
		return &fs.PathError{Op: "open", Path: name, Err: ErrNotRecord{"is a symlink or reparse point; dotlock never follows one at a lock path"}}
	}
	return nil
}

func noFollowError(name string, err error) error { return err }

func contendedErrno(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, errSharingViolation)
}

func networkFS(dir string) bool { return true }

// errSharingViolation is ERROR_SHARING_VIOLATION, which package syscall
// does not name.
const errSharingViolation = syscall.Errno(32)

func directFlag(dir string) int { return 0 }
