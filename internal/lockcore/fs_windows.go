//go:build windows

package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
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
		return &fs.PathError{Op: "open", Path: name, Err: ErrNotRecord{Msg: "is a symlink or reparse point; dotlock never follows one at a lock path"}}
	}
	return nil
}

func noFollowError(name string, err error) error { return err }

func contendedErrno(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, errSharingViolation) ||
		errors.Is(err, errUnexpNetErr) || errors.Is(err, errNetnameDeleted)
}

func networkFS(dir string) bool { return true }

// transientErrno: see fs_unix.go; Windows' network errors are
// contendedErrno's.
func transientErrno(err error) bool { return false }

// busyErrno reports errors that mean another process is removing or
// renaming the entry right now: a directory being removed cannot be
// opened meanwhile (a sharing violation).
func busyErrno(err error) bool { return errors.Is(err, errSharingViolation) }

// errSharingViolation is ERROR_SHARING_VIOLATION, which package syscall
// does not name.
const errSharingViolation = syscall.Errno(32)

// Network errors a create on an SMB share may report although it took
// effect (P6), like EIO on Unix: ERROR_UNEXP_NET_ERR and
// ERROR_NETNAME_DELETED.
const (
	errUnexpNetErr    = syscall.Errno(59)
	errNetnameDeleted = syscall.Errno(64)
)

func directFlag(dir string) int { return 0 }

// openFile is os.OpenFile, but shares the handle for deletion as well as
// reading and writing (os.OpenFile does not), and does not follow a
// symlink or junction at name. Without FILE_SHARE_DELETE a holder's open
// entry, or a contender that is reading the record, makes every rename
// and remove of the entry fail with a sharing violation: no breaker could
// move a dead holder's entry while another process looks at it, and a
// live holder's heartbeat handle would pin its entry (Unix lets both
// happen; the protocol relies on it).
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	p, err := syscall.UTF16PtrFromString(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var access uint32
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		access = syscall.GENERIC_READ
	case os.O_WRONLY:
		access = syscall.GENERIC_WRITE
	default:
		access = syscall.GENERIC_READ | syscall.GENERIC_WRITE
	}
	var create uint32
	switch {
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		create = syscall.CREATE_NEW
	case flag&(os.O_CREATE|os.O_TRUNC) == os.O_CREATE|os.O_TRUNC:
		create = syscall.CREATE_ALWAYS
	case flag&os.O_CREATE != 0:
		create = syscall.OPEN_ALWAYS
	case flag&os.O_TRUNC != 0:
		create = syscall.TRUNCATE_EXISTING
	default:
		create = syscall.OPEN_EXISTING
	}
	attrs := uint32(syscall.FILE_ATTRIBUTE_NORMAL | syscall.FILE_FLAG_OPEN_REPARSE_POINT)
	if flag&os.O_CREATE != 0 && perm&0o200 == 0 {
		attrs |= syscall.FILE_ATTRIBUTE_READONLY
	}
	if access == syscall.GENERIC_READ {
		// As os.OpenFile: a directory opens for reading (and is then
		// refused as "not a record" by what it is).
		attrs |= syscall.FILE_FLAG_BACKUP_SEMANTICS
	}
	const share = syscall.FILE_SHARE_READ | syscall.FILE_SHARE_WRITE | syscall.FILE_SHARE_DELETE
	h, err := syscall.CreateFile(p, access, share, nil, create, attrs, 0)
	if err != nil {
		if err == syscall.ERROR_ACCESS_DENIED && access != syscall.GENERIC_READ {
			// As os.OpenFile: writing to a directory is EISDIR.
			if fa, aerr := syscall.GetFileAttributes(p); aerr == nil && fa&syscall.FILE_ATTRIBUTE_DIRECTORY != 0 {
				err = syscall.EISDIR
			}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}

// removeDir removes the empty lock directory dir. While another process
// lists it (a contender looking for shared holders) Windows refuses with a
// sharing violation; listings are brief, so try again for a while. (Were
// listings shared for deletion, the removal would succeed but leave the
// name in place until the last listing closed, and contenders that list it
// could keep it there.)
//
// It calls RemoveDirectory itself: os.Remove first tries DeleteFile, which
// on a directory only fails, and under Wine a DeleteFile racing with other
// processes' opens of the directory once froze its caller for good, guard
// held.
func removeDir(dir string) error {
	p, err := syscall.UTF16PtrFromString(dir)
	if err != nil {
		return &fs.PathError{Op: "remove", Path: dir, Err: err}
	}
	return whileBusy(func() error {
		if err := syscall.RemoveDirectory(p); err != nil {
			return &fs.PathError{Op: "remove", Path: dir, Err: err}
		}
		return nil
	}, busyErrno, 50*time.Microsecond, 5*time.Millisecond)
}

// createOwner creates the owner record at name, inside the lock directory
// root that the caller has just made. os.Root cannot share a handle for
// deletion, so the file is created by name, and then checked to be inside
// root: the directory at the path must still be root's.
func createOwner(root *os.Root, name string, perm fs.FileMode) (*os.File, error) {
	f, err := openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	want, err := root.Stat(".")
	if err == nil {
		var got fs.FileInfo
		if got, err = os.Lstat(filepath.Dir(name)); err == nil && !os.SameFile(want, got) {
			err = &fs.PathError{Op: "create", Path: name, Err: errors.New("lock directory replaced while creating its record")}
		}
	}
	if err != nil {
		f.Close()
		os.Remove(name)
		return nil, err
	}
	return f, nil
}

// ReplaceFile renames from over to (package lockdir's WriteFile and
// Transform). Windows refuses ("Access denied") while another program has
// the file open without sharing it for deletion (a reader that takes no
// lock, a virus scanner); such opens are brief, so it tries again for a
// while, as cmd/go's robustio does.
func ReplaceFile(from, to string) error {
	return whileBusy(func() error { return os.Rename(from, to) },
		func(err error) bool { return busyErrno(err) || errors.Is(err, fs.ErrPermission) },
		time.Millisecond, 50*time.Millisecond)
}

// ownedBy says whose a file is: not told on Windows (ACLs, not uids).
func ownedBy(any) string { return "" }

const listOwnerless = false
const errNoDescriptors = syscall.Errno(4) // ERROR_TOO_MANY_OPEN_FILES

// keepQueueOpen: not on Windows (see beatQueued).
const keepQueueOpen = false

// goneErr is err: Windows has no ESTALE (see fs_unix.go).
func goneErr(err error) error { return err }

// slotFlag: reads are exact here (see fs_linux.go).
const slotFlag = 0

// dirHandles: directories are named by path here (dir_windows.go).
func dirHandles(dir string) bool { return false }

// noDeferredClose: see fs_linux.go (Windows' own client is not that one).
func noDeferredClose(fd int, dir string) {}

// keepsHandles: records are read as on a local filesystem here (directFlag).
func keepsHandles(dir string) bool { return false }

// undecidedGone: see fs_unix.go.
func undecidedGone(err error) bool { return errors.As(err, new(replacedFile)) }
