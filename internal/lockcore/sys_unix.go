//go:build unix

package lockcore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/dotlock/dotlock/stale"
)

// Raw system calls on the hot path: os.OpenFile registers every descriptor
// with the runtime poller (five system calls, all of them failing for a
// regular file), and os.Rename lstats the target first. A lock and unlock
// is a handful of system calls; these were a third of them.

// fdEntry is an entry written through a bare descriptor. Like an os.File
// it may be closed twice, and is not used once closed: a descriptor number
// closed twice could be another file's by then.
type fdEntry struct {
	mu sync.RWMutex
	fd int // -1 once closed
}

func (e *fdEntry) WriteAt(p []byte, off int64) (int, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.fd < 0 {
		return 0, os.ErrClosed
	}
	n, err := unix.Pwrite(e.fd, p, off)
	if err != nil {
		return n, os.NewSyscallError("pwrite", err)
	}
	return n, nil
}

func (e *fdEntry) Sync() error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.fd < 0 {
		return os.ErrClosed
	}
	return os.NewSyscallError("fsync", unix.Fsync(e.fd))
}

func (e *fdEntry) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fd < 0 {
		return os.ErrClosed
	}
	err := unix.Close(e.fd)
	e.fd = -1
	return os.NewSyscallError("close", err)
}

// identity is the entry's device and inode. While the descriptor is open
// the inode cannot be freed, so no other file can have the same pair.
func (e *fdEntry) identity() (fileID, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.fd < 0 {
		return fileID{}, os.ErrClosed
	}
	var st unix.Stat_t
	if err := unix.Fstat(e.fd, &st); err != nil {
		return fileID{}, err
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

type fileID struct{ dev, ino uint64 }

// pathID is the device and inode at name, not following a symlink.
func pathID(name string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		return fileID{}, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

// createExclFile creates name with O_CREATE|O_EXCL, which never follows a
// symlink at name.
func createExclFile(name string, perm fs.FileMode) (Entry, error) {
	for {
		fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &fdEntry{fd: fd}, nil
	}
}

// readRecordLocal reads a record with one open, fstat, read and close.
func readRecordLocal(name string) ([]byte, error) { return readRecordLocalStat(name, nil) }

// readRecordLocalOwner is readRecordLocal that also sets *owner to the uid
// of the file read (from the same fstat).
func readRecordLocalOwner(name string, owner *int) ([]byte, error) {
	var st unix.Stat_t
	data, err := readRecordLocalStat(name, &st)
	if st.Mode != 0 {
		*owner = int(st.Uid)
	}
	return data, err
}

// readRecordLocalStat is readRecordLocal that also sets *seen, if seen is
// not nil, to the fstat of the file read.
func readRecordLocalStat(name string, seen *unix.Stat_t) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, goneErr(noFollowError(name, &fs.PathError{Op: "open", Path: name, Err: err}))
	}
	defer unix.Close(fd)
	return readRecordFD(fd, name, true, seen)
}

// readRecordFD reads the record file open at fd (named name, for errors),
// at most MaxRecordSize+1 bytes. With trustSize, reading stops at the size
// fstat reports (one read less); not on a network filesystem, whose
// attribute cache may report an old size (there the fstat is the client's
// cached one: fstatRecord), and a read cut short to such a size is read
// again (cutShort). If seen is not nil, it is set to the fstat.
func readRecordFD(fd int, name string, trustSize bool, seen *unix.Stat_t) ([]byte, error) {
	var st unix.Stat_t
	if err := fstatRecord(fd, &st, !trustSize); err != nil {
		return nil, goneErr(&fs.PathError{Op: "stat", Path: name, Err: err})
	}
	if seen != nil {
		*seen = st
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRecord{Msg: "not a lock record: " + describe(unixMode(uint32(st.Mode))) + ownedBy(&st)}}
	}
	// Room for one byte more than a record may have, so that an oversized
	// file is seen as such; and stop early when fstat's size is reached.
	size := int64(stale.MaxRecordSize)
	if trustSize {
		size = min(max(st.Size, 0), stale.MaxRecordSize)
	}
	b, err := readFD(fd, size+1, trustSize, st.Size)
	if err == nil && !trustSize && cutShort(b, func() (int64, bool) { return serverSize(fd) }) {
		if _, err = unix.Seek(fd, 0, io.SeekStart); err == nil {
			b, err = readFD(fd, size+1, false, 0)
		}
	}
	if err != nil {
		return nil, goneErr(&fs.PathError{Op: "read", Path: name, Err: err})
	}
	return vetRecord(name, b, func() string { return ownedBy(&st) })
}

// readFD reads what readRecordFD returns from fd's offset on, into a
// buffer of bufSize bytes grown up to the bound; with trustSize, no
// further than statSize.
func readFD(fd int, bufSize int64, trustSize bool, statSize int64) ([]byte, error) {
	buf := make([]byte, bufSize)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
		if trustSize && int64(n) == statSize {
			break
		}
		if readAll(buf[:n], len(buf)) {
			break
		}
		if n == len(buf) && len(buf) <= stale.MaxRecordSize {
			// Grew since fstat: read on, up to the bound.
			buf = append(buf, make([]byte, stale.MaxRecordSize+1-len(buf))...)
		}
	}
	return buf[:n], nil
}

// unixMode is the fs.FileMode type bits of a stat mode.
func unixMode(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// rename is os.Rename without its lstat of the target.
func rename(from, to string) error {
	for {
		err := unix.Rename(from, to)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: explainRename(from, to, err)}
		}
		return nil
	}
}

// createExclAt creates name inside the directory dir with O_EXCL, relative
// to a descriptor of dir: inside the directory the caller just made, not
// inside whatever the path names by now. dir is opened through o (nil: by
// name).
func createExclAt(o *opDir, dir, name string, perm fs.FileMode) (Entry, error) {
	d, err := o.openLockDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.close()
	e, err := d.create(name, perm)
	if errors.Is(err, errNoDescriptors) && o.giveBack() {
		e, err = d.create(name, perm) // with the one o held
	}
	return e, err
}

// rmdir is os.Remove for a directory, without its unlink attempt first.
func rmdir(name string) error {
	if err := unix.Rmdir(name); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// entryStamp tells the file at name from another that replaced it: its
// stamp (seen_unix.go; ok is false if it cannot be looked at).
func entryStamp(name string) (string, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		return "", false
	}
	return fmt.Sprint(stampOf(&st)), true
}

// spareDescriptor holds a descriptor (of /dev/null) until the returned
// function gives it back, so that a call made after that has one even
// when the process is at its limit meanwhile; nil if none is free.
func spareDescriptor() func() {
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	return func() { unix.Close(fd) }
}
