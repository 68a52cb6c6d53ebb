package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// opDir is the directory a lock path is in, opened once for one operation
// — an attempt at the lock, a release — where dirHandles (FUSE): the
// operation's calls on the names beside the lock (P, its last-record
// slots, P.break, P.queue) are made through it, and so look the directory
// up once rather than at every call, which on sshfs is a request for each
// directory between the mount and the lock. As guardFiles' calls, and for
// the same reasons, they go by name elsewhere, where the open fails (the
// calls by name then say why), once descriptors run out (a release must
// work with one), and once the descriptor is stale. A nil *opDir acts by
// name. It is used by one goroutine at a time.
//
// The directory is the one the path named when the operation began: were
// the user's directory renamed or replaced during the operation, its
// calls go on in the one it began in (a guard section's do too; see
// guardFiles).
type opDir struct{ d *lockDir }

// openOpDir opens, where dirHandles, the directory the lock path is in.
func openOpDir(path string) *opDir {
	dir := filepath.Dir(path)
	if !dirHandles(dir) {
		return nil
	}
	d, err := openUserDir(dir)
	if err != nil {
		return nil
	}
	return &opDir{d: d}
}

func (o *opDir) close() {
	if o != nil {
		o.d.close()
		o.d = nil
	}
}

// at is the open directory and name's base name there, if name is in it;
// else nil, to act by name.
func (o *opDir) at(name string) (*lockDir, string) {
	if o == nil || o.d == nil || filepath.Dir(name) != o.d.path {
		return nil, ""
	}
	return o.d, filepath.Base(name)
}

// byNameAfter is byNameAfter (write.go), and if so closes the descriptor:
// the operation goes on by name, with one descriptor more.
func (o *opDir) byNameAfter(err error) bool {
	if !byNameAfter(err) {
		return false
	}
	o.close()
	return true
}

// create creates the file name exclusively (createExclFile).
func (o *opDir) create(name string, perm fs.FileMode) (Entry, error) {
	if d, base := o.at(name); d != nil {
		if e, err := d.create(base, perm); !o.byNameAfter(err) {
			return e, err
		}
	}
	return createExclFile(name, perm)
}

// read reads the record file name (readRecord).
func (o *opDir) read(name string) ([]byte, error) {
	if d, base := o.at(name); d != nil {
		if b, err := d.read(base); !o.byNameAfter(err) {
			return b, err
		}
	}
	return readRecord(name)
}

// readSlot reads the last-record slot name (readSlot). An EINVAL is left
// to readSlot by name, which reads again with other flags and never takes
// it for a missing slot (as d.read would: vanishing).
func (o *opDir) readSlot(name string) ([]byte, error) {
	if d, base := o.at(name); d != nil && !keepsHandles(d.path) {
		b, err := d.read(base)
		if !o.byNameAfter(err) && !errors.Is(err, syscall.EINVAL) {
			return b, err
		}
	}
	return readSlot(name)
}

// lstat is the mode of the file at name, not following a symlink.
func (o *opDir) lstat(name string) (fs.FileMode, error) {
	if d, base := o.at(name); d != nil {
		if m, err := d.lstat(base); !o.byNameAfter(err) {
			return m, err
		}
	}
	st, err := os.Lstat(name)
	if err != nil {
		return 0, err
	}
	return st.Mode(), nil
}

// rename renames from to to, both beside the lock.
func (o *opDir) rename(from, to string) error {
	d, bf := o.at(from)
	if _, bt := o.at(to); d != nil && bt != "" {
		if err := d.rename(bf, bt); !o.byNameAfter(err) {
			return err
		}
	}
	return rename(from, to)
}

// mkdir makes the directory name (a lock directory, A1).
func (o *opDir) mkdir(name string, perm fs.FileMode) error {
	if d, base := o.at(name); d != nil {
		if err := d.mkdir(base, perm); !o.byNameAfter(err) {
			return err
		}
	}
	return os.Mkdir(name, perm)
}

// rmdir removes the empty directory name.
func (o *opDir) rmdir(name string) error {
	if d, base := o.at(name); d != nil {
		if err := d.rmdir(base); !o.byNameAfter(err) {
			return err
		}
	}
	return rmdir(name)
}

// openLockDir opens the lock directory at name (openLockDir).
func (o *opDir) openLockDir(name string) (*lockDir, error) {
	if d, base := o.at(name); d != nil {
		if ld, err := d.openLockDir(base); !o.byNameAfter(err) {
			return ld, err
		}
	}
	return openLockDir(name)
}

// moveOut renames name, inside the lock directory ld, to dst beside the
// lock (lockDir.moveOut).
func (o *opDir) moveOut(ld *lockDir, name, dst string) error {
	if d, base := o.at(dst); d != nil {
		if err := ld.moveOutTo(name, d, base); !o.byNameAfter(err) {
			return err
		}
	}
	return ld.moveOut(name, dst)
}
