//go:build unix

package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonblock = syscall.O_NONBLOCK
)

// refuseSymlink is done by O_NOFOLLOW at open time on Unix.
func refuseSymlink(string) error { return nil }

// noFollowError turns O_NOFOLLOW's ELOOP into a clear message.
func noFollowError(name string, err error) error {
	if errors.Is(err, syscall.ELOOP) {
		if st, lerr := os.Lstat(name); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return &fs.PathError{Op: "open", Path: name, Err: ErrNotRecord{Msg: "is a symlink; dotlock never follows one at a lock path"}}
		}
	}
	return err
}

// contendedErrno reports errors that a network filesystem may return to the
// loser of a racing exclusive create instead of EEXIST (sshfs: EPERM), or
// for a create whose reply was lost (EIO).
func contendedErrno(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) ||
		errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENOTEMPTY)
}

// transientErrno reports errors a network filesystem's client gives while
// it cannot reach the server or reconnects to it: an SMB client (soft, its
// default) answered EAGAIN for opens under way while smbd restarted.
// They say nothing about the lock: Lock looks again (P6).
func transientErrno(err error) bool {
	for _, e := range []syscall.Errno{syscall.EAGAIN, syscall.EINTR, syscall.ETIMEDOUT, syscall.EHOSTDOWN,
		syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.ENETUNREACH, syscall.ENOTCONN, syscall.ECONNRESET,
		syscall.ECONNABORTED, syscall.ECONNREFUSED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// openFile is os.OpenFile; Windows needs more (see fs_windows.go).
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// ReplaceFile renames from over to (package lockdir's WriteFile and
// Transform).
func ReplaceFile(from, to string) error { return os.Rename(from, to) }

// ownedBy says whose a file is, from its fs.FileInfo.Sys() or a
// *unix.Stat_t: ", owned by uid 1001 (bob)"; empty if that cannot be told.
func ownedBy(sys any) string {
	var uid uint32
	switch st := sys.(type) {
	case *syscall.Stat_t:
		uid = st.Uid
	case *unix.Stat_t:
		uid = st.Uid
	default:
		return ""
	}
	s := fmt.Sprintf(", owned by uid %d", uid)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}

const listOwnerless = true
const errNoDescriptors = syscall.EMFILE

// keepQueueOpen: a waiter heartbeats its queue record through the
// descriptor that created it (see beatQueued).
const keepQueueOpen = true

// goneErr is err, but for ESTALE — NFS's answer for a file that another
// client removed while this one had it open or cached — which becomes an
// error matching fs.ErrNotExist: for whoever looks at the lock path, the
// file is gone, and what stands there now (if anything) is for the next
// look. (A holder's own record gone is a lost hold: H1.)
func goneErr(err error) error {
	if !errors.Is(err, syscall.ESTALE) {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: pe.Path, Err: staleHandle{}}
	}
	return staleHandle{}
}

// vanishing is an error a network filesystem gives for a file on its way
// out (SMB's EINVAL while the directory holding it is removed), as a file
// that is gone.
type vanishing struct{ errno error }

func (v vanishing) Error() string        { return v.errno.Error() + " (the file is being removed)" }
func (v vanishing) Is(target error) bool { return target == fs.ErrNotExist }
func (v vanishing) Unwrap() error        { return v.errno }

// staleHandle is ESTALE, as a file that is gone.
type staleHandle struct{}

func (staleHandle) Error() string        { return "stale file handle: removed by another client" }
func (staleHandle) Is(target error) bool { return target == fs.ErrNotExist }
func (staleHandle) Unwrap() error        { return syscall.ESTALE }

// undecidedGone reports whether err says a record is gone only as far as
// this client can tell: an SMB client's EINVAL (replacedFile, vanishing).
// Ours may still be there; a caller that created one must not walk away
// from it as if it had been removed.
func undecidedGone(err error) bool {
	return errors.As(err, new(replacedFile)) || errors.As(err, new(vanishing))
}
