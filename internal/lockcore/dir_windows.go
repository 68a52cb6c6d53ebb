//go:build windows

package lockcore

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// lockDir is a directory of the protocol's (see dir_unix.go). Windows has
// no openat: names are joined to the path, which is checked at open not to
// be a symlink or junction, and each file is opened without following a
// reparse point (openFile).
type lockDir struct{ path string }

func openLockDir(path string) (*lockDir, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() || st.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRecord{Msg: "is " + describe(st.Mode()) + ", not a lock directory"}}
	}
	return &lockDir{path: path}, nil
}

// openLockDirToList is openLockDir (see dir_unix.go).
func openLockDirToList(path string) (*lockDir, error) { return openLockDir(path) }

// openUser: not used here (dirHandles is false; see dir_unix.go).
func (d *lockDir) openUser(dir string) error {
	*d = lockDir{path: dir}
	return nil
}

func (d *lockDir) close() {}

func (d *lockDir) join(name string) string { return filepath.Join(d.path, name) }

func (d *lockDir) names() ([]string, error) { return readDirNames(d.path) }

func (d *lockDir) read(name string) ([]byte, error) { return readRecordFile(d.join(name)) }

// readOwner is read; a file's owner is not told here (*owner is -1).
func (d *lockDir) readOwner(name string, owner *int) ([]byte, error) {
	if owner != nil {
		*owner = -1
	}
	return d.read(name)
}

func (d *lockDir) create(name string, perm fs.FileMode) (Entry, error) {
	return openFile(d.join(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

func (d *lockDir) remove(name string) error { return os.Remove(d.join(name)) }

func (d *lockDir) openRecord(name string) (Entry, []byte, error) {
	if err := refuseSymlink(d.join(name)); err != nil {
		return nil, nil, err
	}
	f, err := openFile(d.join(name), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, stale.MaxRecordSize+1))
	if err == nil {
		data, err = vetRecord(d.join(name), data, func() string { return "" })
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, data, nil
}

func (d *lockDir) moveOut(name, dst string) error { return rename(d.join(name), dst) }

func (d *lockDir) rename(from, to string) error { return rename(d.join(from), d.join(to)) }

func (d *lockDir) moveIn(src, name string) error { return rename(src, d.join(name)) }

// openLockDir, openLockDirToList, lstat, mkdir, rmdir and moveOutTo: by
// name (see dir_unix.go).
func (d *lockDir) openLockDir(_, path string) (*lockDir, error) { return openLockDir(path) }

func (d *lockDir) openLockDirToList(_, path string) (*lockDir, error) {
	return openLockDirToList(path)
}

func (d *lockDir) lstat(name string) (fs.FileMode, error) {
	st, err := os.Lstat(d.join(name))
	if err != nil {
		return 0, err
	}
	return st.Mode(), nil
}

func (d *lockDir) mkdir(name string, perm fs.FileMode) error { return os.Mkdir(d.join(name), perm) }

func (d *lockDir) rmdir(name string) error { return rmdir(d.join(name)) }

func (d *lockDir) moveOutTo(name string, dst *lockDir, to string) error {
	return rename(d.join(name), dst.join(to))
}

// readDirNames lists dir. On Windows a directory being removed by another
// process cannot be opened for a moment (busyErrno); that is waited out,
// briefly, rather than reported.
func readDirNames(dir string) (names []string, err error) {
	err = whileBusy(func() error {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		names, err = f.Readdirnames(-1)
		return err
	}, busyErrno, 50*time.Microsecond, 5*time.Millisecond)
	return names, err
}

// whileBusy runs op again while it fails with an error busy accepts, for
// up to 2 s, sleeping from first to at most most between tries: for the
// brief refusals Windows gives while another process has a file or
// directory open.
func whileBusy(op func() error, busy func(error) bool, first, most time.Duration) error {
	deadline := time.Now().Add(2 * time.Second)
	for delay := first; ; delay = min(2*delay, most) {
		err := op()
		if err == nil || !busy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
	}
}
