package lockcore

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// fstatRecord is fstat of fd, a record just opened by name; with cached, as
// the client has it: statx with AT_STATX_DONT_SYNC asks nothing of the
// server. The open has just looked the name up, and what is used of the
// answer on a network filesystem — the file's type, owner and identity —
// never changes for an inode (its size is not trusted there: see
// readRecordFD). sshfs with its attribute cache off (attr_timeout=0, as
// hosts sharing a directory need) sent a request for each fstat.
func fstatRecord(fd int, st *unix.Stat_t, cached bool) error {
	if !cached {
		return unix.Fstat(fd, st)
	}
	var sx unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC,
		unix.STATX_TYPE|unix.STATX_MODE|unix.STATX_UID|unix.STATX_INO|unix.STATX_SIZE, &sx)
	if err != nil {
		// ENOSYS before Linux 4.11; EPERM from a seccomp profile that
		// does not know statx.
		return unix.Fstat(fd, st)
	}
	*st = unix.Stat_t{Ino: sx.Ino, Mode: uint32(sx.Mode), Uid: sx.Uid, Size: int64(sx.Size)}
	setDev(&st.Dev, unix.Mkdev(sx.Dev_major, sx.Dev_minor))
	return nil
}

// serverSize is the size of the file open at fd as its server has it:
// statx with AT_STATX_FORCE_SYNC, past the client's attribute cache. A
// network client reads no further than the size it has cached (FUSE's
// direct I/O too), and sshfs with its default caches kept the size another
// host's file had when first looked at — 0, an entry created and not yet
// written — for 20 s: the record written since read as empty, and one
// host broke another's live entry as abandoned half made (P5;
// TestTwoHosts/CachedEmpty). ok is false where it cannot be asked.
func serverSize(fd int) (size int64, ok bool) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_FORCE_SYNC, unix.STATX_SIZE, &sx); err != nil || sx.Mask&unix.STATX_SIZE == 0 {
		return 0, false
	}
	return int64(sx.Size), true
}

// setDev sets a Stat_t's Dev, a uint32 on some architectures (mips).
func setDev[T ~uint32 | ~uint64](p *T, v uint64) { *p = T(v) }

// openedStat is what readRecordFileFlags learns of the file it opened.
type openedStat struct{ st unix.Stat_t }

// statOpened is fstatRecord, cached, of f (a record on a network
// filesystem, read through package os).
func statOpened(f *os.File) (*openedStat, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	s := &openedStat{}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = fstatRecord(int(fd), &s.st, true) }); err != nil {
		serr = err
	}
	if serr != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.Name(), Err: serr}
	}
	return s, nil
}

// serverSizeOf is serverSize of f.
func serverSizeOf(f *os.File) (size int64, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	rc.Control(func(fd uintptr) { size, ok = serverSize(int(fd)) })
	return size, ok
}

func (s *openedStat) mode() fs.FileMode { return unixMode(s.st.Mode) | fs.FileMode(s.st.Mode&0o777) }
func (s *openedStat) owner() string     { return ownedBy(&s.st) }

// at reports whether the file at name (not following a symlink) is the
// one opened.
func (s *openedStat) at(name string) bool {
	id, err := pathID(name)
	return err == nil && id == fileID{uint64(s.st.Dev), s.st.Ino}
}
