package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// opDir is the directory a lock path is in, opened once for one operation
// — an attempt at the lock, a release, a guard section — where dirHandles
// (FUSE). The operation's own calls on the names beside the lock (P, its
// last-record slots, A5's look for P.break, the guard section's P.break,
// P.queue; and, for P and P.queue, the opens through which the records
// inside them are reached) are made relative to it, so that the directory is
// looked up once rather than at every call: on sshfs mounted for sharing
// (entry_timeout=0) each lookup is a request, for each directory between
// the mount and the lock. The directory is the user's, and its path may
// lead through symlinks (only what is under a lock path is never
// followed): it is opened as a call by name would resolve it.
//
// Calls go by name where the open failed (the calls by name then say
// why), once a call through it fails for want of a descriptor (a release
// must work with one: it is closed first) or with ESTALE (a FUSE
// filesystem other than sshfs may name files by handle), and where the
// *opDir is nil. An operation gives it back before work that goes by name
// and may need a descriptor (giveBack). It is used by one goroutine.
//
// The directory is the one the path named when the operation began: were
// the user's directory renamed or replaced meanwhile, the operation's
// calls go on in that one.
type opDir struct {
	dir  lockDir
	open bool
}

// openOpDir opens, where dirHandles, the directory the lock path is in.
func openOpDir(path string) *opDir {
	dir := filepath.Dir(path)
	if !dirHandles(dir) {
		return nil
	}
	o := &opDir{open: true}
	if err := o.dir.openUser(dir); err != nil {
		return nil
	}
	return o
}

func (o *opDir) close() { o.giveBack() }

// giveBack closes the directory, if open, and reports whether it was: the
// operation goes on by name, and has that descriptor for other calls.
func (o *opDir) giveBack() bool {
	if o == nil || !o.open {
		return false
	}
	o.dir.close()
	o.open = false
	return true
}

// at is the open directory and name's base name there, if name is in it;
// else nil, to act by name.
func (o *opDir) at(name string) (*lockDir, string) {
	if o == nil || !o.open || filepath.Dir(name) != o.dir.path {
		return nil, ""
	}
	return &o.dir, filepath.Base(name)
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
		if ld, err := d.openLockDir(base, name); !o.byNameAfter(err) {
			return ld, err
		}
	}
	return openLockDir(name)
}

// openLockDirToList opens the directory name beside the lock to list it
// (openLockDirToList).
func (o *opDir) openLockDirToList(name string) (*lockDir, error) {
	if d, base := o.at(name); d != nil {
		if ld, err := d.openLockDirToList(base, name); !o.byNameAfter(err) {
			return ld, err
		}
	}
	return openLockDirToList(name)
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
