package lockcore

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

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

// setDev sets a Stat_t's Dev, a uint32 on some architectures (mips).
func setDev[T ~uint32 | ~uint64](p *T, v uint64) { *p = T(v) }

// statOpened is fstatRecord, cached, of f (a record on a network
// filesystem, read through package os).
func statOpened(f *os.File) (fs.FileInfo, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Stat()
	}
	info := &statInfo{name: f.Name()}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = fstatRecord(int(fd), &info.st, true) }); err != nil {
		return f.Stat()
	}
	if serr != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.Name(), Err: serr}
	}
	return info, nil
}

// statInfo is an fs.FileInfo of what fstatRecord asked for; Sys is the
// *unix.Stat_t.
type statInfo struct {
	name string
	st   unix.Stat_t
}

func (s *statInfo) Name() string       { return filepath.Base(s.name) }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) Mode() fs.FileMode  { return statMode(s.st.Mode) }
func (s *statInfo) ModTime() time.Time { return time.Time{} } // not asked for
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }

// sameFile reports whether a and b describe the same file (device and
// inode), whether from package os or statOpened.
func sameFile(a, b fs.FileInfo) bool {
	da, ia, ok1 := devIno(a.Sys())
	db, ib, ok2 := devIno(b.Sys())
	return ok1 && ok2 && da == db && ia == ib
}

func devIno(sys any) (dev, ino uint64, ok bool) {
	switch st := sys.(type) {
	case *syscall.Stat_t:
		return uint64(st.Dev), st.Ino, true
	case *unix.Stat_t:
		return uint64(st.Dev), st.Ino, true
	}
	return 0, 0, false
}

// statMode is a stat mode as an fs.FileMode, as package os makes it.
func statMode(m uint32) fs.FileMode {
	mode := unixMode(m) | fs.FileMode(m&0o777)
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
