//go:build unix

package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir is a directory of the protocol's (a lock directory P, or the
// queue P.queue) opened without following a symlink at its path, so that
// everything done inside it is done inside that directory, never inside
// one a neighbour's symlink points to, nor inside one put at the path
// later.
type lockDir struct {
	path     string
	fd       int
	pathOnly bool // fd serves *at calls only (O_PATH): names opens it to list
}

// openLockDir opens the directory at path for what is done inside it.
// Where pathOnlyDirs (local, FUSE), the descriptor is O_PATH: only the
// path is looked up, and the filesystem is not asked to open the
// directory, which to sshfs is a request to open and one to close it (8
// of a lockdir lock+unlock's 68). A symlink, or anything else that is not
// a directory, is refused with an error matching ErrNotLock; nothing at
// path, with one matching fs.ErrNotExist.
func openLockDir(path string) (*lockDir, error) {
	if pathOnlyDirs(filepath.Dir(path)) { // (its parent's filesystem: always there)
		return openDir(path, oPath, true)
	}
	return openLockDirToList(path)
}

// openLockDirToList is openLockDir for a caller that lists the directory:
// one descriptor, open for reading (a release must work with few
// descriptors left).
func openLockDirToList(path string) (*lockDir, error) {
	return openDir(path, unix.O_RDONLY|unix.O_NONBLOCK, false)
}

// openUser opens dir, the directory a lock path is in, into d, for calls
// inside it where dirHandles says they are better made so (FUSE: opDir).
// That directory is the user's, and its path may lead through symlinks
// (only what is under a lock path is never followed): it is opened as a
// call by name would resolve it.
func (d *lockDir) openUser(dir string) error {
	for {
		fd, err := unix.Open(dir, oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return goneErr(&fs.PathError{Op: "open", Path: dir, Err: err})
		}
		*d = lockDir{path: dir, fd: fd, pathOnly: oPath != 0}
		return nil
	}
}

func openDir(path string, flags int, pathOnly bool) (*lockDir, error) {
	return openDirAt(unix.AT_FDCWD, path, path, flags, pathOnly)
}

// openDirAt is openDir of name relative to the directory dirfd (path
// names it, for errors).
func openDirAt(dirfd int, name, path string, flags int, pathOnly bool) (*lockDir, error) {
	for tries := 0; ; tries++ {
		// (O_PATH|O_NOFOLLOW opens a symlink itself: O_DIRECTORY refuses it.)
		fd, err := unix.Openat(dirfd, name, flags|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch err {
		case nil:
			return &lockDir{path: path, fd: fd, pathOnly: pathOnly}, nil
		case unix.EINTR:
			continue
		case unix.ELOOP, unix.ENOTDIR:
			st, lerr := os.Lstat(path)
			switch {
			case lerr == nil && !st.IsDir():
				return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRecord{Msg: "is " + describe(st.Mode()) + ", not a lock directory" + ownedBy(st.Sys())}}
			case errors.Is(lerr, fs.ErrNotExist):
				err = unix.ENOENT // the stranger has gone since the open
			case lerr == nil && tries < 3:
				continue // a directory by now: open it
			}
		}
		return nil, goneErr(&fs.PathError{Op: "open", Path: path, Err: err})
	}
}

func (d *lockDir) close() {
	if d != nil && d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1 // never a number some other file has by now
	}
}

func (d *lockDir) join(name string) string {
	if d.path == "/" {
		return "/" + name
	}
	return d.path + "/" + name
}

// names lists the directory: through its own descriptor if it was opened
// to list (openLockDirToList: no second one, for a release with few
// descriptors left), else through one opened for the listing.
func (d *lockDir) names() ([]string, error) {
	fd, err := d.listable()
	if err != nil {
		return nil, err
	}
	if fd != d.fd {
		defer unix.Close(fd)
	}
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// A directory being removed: SMB answers ENOENT, NFS ESTALE.
			return nil, goneErr(&fs.PathError{Op: "readdir", Path: d.path, Err: err})
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// listable returns a descriptor of the directory open for reading, at its
// start: its own, or, for an O_PATH one, a new one the caller closes
// ("." is opened without looking anything up again).
func (d *lockDir) listable() (int, error) {
	if !d.pathOnly {
		if _, err := unix.Seek(d.fd, 0, 0); err != nil {
			return -1, &fs.PathError{Op: "readdir", Path: d.path, Err: err}
		}
		return d.fd, nil
	}
	for {
		fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, goneErr(&fs.PathError{Op: "open", Path: d.path, Err: err})
		}
		return fd, nil
	}
}

// read reads the record file name inside the directory (see readRecord).
func (d *lockDir) read(name string) ([]byte, error) { return d.readOwner(name, nil) }

// readOwner is read that also sets *owner, if owner is not nil, to the
// uid of the file read (-1 where that cannot be told).
func (d *lockDir) readOwner(name string, owner *int) ([]byte, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	direct := directFlag(d.path)
	for {
		fd, err := unix.Openat(d.fd, name, flags|direct, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EINVAL && direct != 0:
			direct = 0 // no direct I/O here
			continue
		case err != nil:
			return nil, d.openErr(name, err)
		}
		defer unix.Close(fd)
		noDeferredClose(fd, d.path)
		var st unix.Stat_t
		data, err := readRecordFD(fd, d.join(name), directFlag(d.path) == 0, &st) // sizes are trusted only on a local filesystem
		if owner != nil && st.Mode != 0 {
			*owner = int(st.Uid)
		}
		return data, err
	}
}

// openErr is the error of opening the record name for reading: as a file
// gone for ESTALE (goneErr), and for EINVAL on a network filesystem, which
// SMB answered (with and without O_DIRECT) while another host removed the
// lock directory, and ENOENT 160 ms later; a symlink's, as not a record.
func (d *lockDir) openErr(name string, err error) error {
	if err == unix.EINVAL && knownNetworkFS(d.path) {
		return &fs.PathError{Op: "open", Path: d.join(name), Err: vanishing{err}}
	}
	return goneErr(noFollowError(d.join(name), &fs.PathError{Op: "open", Path: d.join(name), Err: err}))
}

// create creates name inside the directory, exclusively.
func (d *lockDir) create(name string, perm fs.FileMode) (Entry, error) {
	for {
		fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: d.join(name), Err: err}
		}
		return &fdEntry{fd: fd}, nil
	}
}

// remove removes the file name from the directory.
func (d *lockDir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// openRecord opens the record file name inside the directory for reading
// and writing in place, and reads it through the same descriptor, so that
// what is written later is written into the file that was read — not into
// whatever a neighbour has put at the name since (a hard link to another
// file, a FIFO that would block the open).
func (d *lockDir) openRecord(name string) (Entry, []byte, error) {
	for {
		fd, err := unix.Openat(d.fd, name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, d.openErr(name, err)
		}
		data, err := readRecordFD(fd, d.join(name), directFlag(d.path) == 0, nil)
		if err != nil {
			unix.Close(fd)
			return nil, nil, err
		}
		return &fdEntry{fd: fd}, data, nil
	}
}

// moveOut renames name, inside the directory, to the path dst (beside the
// lock): what moves is taken from this directory, not from one a symlink
// put at its path points to.
func (d *lockDir) moveOut(name, dst string) error {
	return renameat(d, name, nil, dst)
}

// rename renames from to to, both inside the directory.
func (d *lockDir) rename(from, to string) error {
	return renameat(d, from, d, to)
}

// moveIn renames the path src to name inside the directory.
func (d *lockDir) moveIn(src, name string) error {
	return renameat(nil, src, d, name)
}

// renameat is renameat(2) of old inside olddir to new inside newdir (a
// nil one: the name is a path), tried again on EINTR. The paths an error
// names are joined only then.
func renameat(olddir *lockDir, old string, newdir *lockDir, new string) error {
	for {
		err := unix.Renameat(olddir.fdOrCwd(), old, newdir.fdOrCwd(), new)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: olddir.pathOf(old), New: newdir.pathOf(new), Err: err}
		}
		return nil
	}
}

// fdOrCwd is the directory's descriptor; AT_FDCWD for none.
func (d *lockDir) fdOrCwd() int {
	if d == nil {
		return unix.AT_FDCWD
	}
	return d.fd
}

// pathOf is the path of name inside the directory; name for none.
func (d *lockDir) pathOf(name string) string {
	if d == nil {
		return name
	}
	return d.join(name)
}

// openLockDir is openLockDir of the lock directory name inside this
// directory (the user's, opDir), whose path is path.
func (d *lockDir) openLockDir(name, path string) (*lockDir, error) {
	if pathOnlyDirs(d.path) {
		return openDirAt(d.fd, name, path, oPath, true)
	}
	return openDirAt(d.fd, name, path, unix.O_RDONLY|unix.O_NONBLOCK, false)
}

// openLockDirToList is openLockDirToList of the directory name inside this
// directory, whose path is path.
func (d *lockDir) openLockDirToList(name, path string) (*lockDir, error) {
	return openDirAt(d.fd, name, path, unix.O_RDONLY|unix.O_NONBLOCK, false)
}

// lstat is the type and permissions of name inside the directory, not
// following a symlink.
func (d *lockDir) lstat(name string) (fs.FileMode, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
		}
		return unixMode(uint32(st.Mode)) | fs.FileMode(st.Mode&0o777), nil
	}
}

// mkdir makes the directory name inside the directory, as os.Mkdir would.
func (d *lockDir) mkdir(name string, perm fs.FileMode) error {
	for {
		err := unix.Mkdirat(d.fd, name, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: d.join(name), Err: err}
		}
		return nil
	}
}

// rmdir removes the empty directory name inside the directory.
func (d *lockDir) rmdir(name string) error {
	if err := unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// moveOutTo renames name, inside the directory, to the name to inside the
// directory dst.
func (d *lockDir) moveOutTo(name string, dst *lockDir, to string) error {
	return renameat(d, name, dst, to)
}
