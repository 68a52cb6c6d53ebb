package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// writeEntry writes rec into the new entry e, synced where records must be.
func (l *Lock) writeEntry(e Entry, rec []byte) error {
	_, err := e.WriteAt(rec, 0)
	if err == nil && l.sync {
		err = e.Sync()
	}
	return err
}

// writeHold is A4: it writes the record of a hold with token into the
// entry e just created, and on a network filesystem makes it visible. The
// record is returned even when its write failed, for the entry to be
// recognised as ours when it is given up (nil: none was made).
func (l *Lock) writeHold(e Entry, token uint64, now time.Time) (stale.Owner, []byte, error) {
	owner, err := stale.Self(token, stale.ModeExclusive, now)
	if err != nil {
		return owner, nil, err
	}
	rec := owner.Marshal()
	if _, err := e.WriteAt(rec, 0); err != nil {
		return owner, rec, &fs.PathError{Op: "write", Path: l.store.Path(), Err: unwrapPath(err)}
	}
	if l.sync {
		if err := e.Sync(); err != nil {
			return owner, rec, &fs.PathError{Op: "sync", Path: l.store.Path(), Err: unwrapPath(err)}
		}
	}
	return owner, rec, nil
}

// writeNewIn creates name exclusively inside the protocol's directory dir
// (P, or P.queue; never through a symlink at dir) with content rec.
func (l *Lock) writeNewIn(o *opDir, dir, name string, rec []byte) error {
	d, err := o.openLockDir(dir)
	if err != nil {
		return err
	}
	defer d.close()
	e, err := d.create(name, fs.FileMode(l.cfg.Perm))
	if err != nil {
		return err
	}
	err = l.writeEntry(e, rec)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeNew creates name exclusively with content rec.
func writeNew(name string, rec []byte, l *Lock) error {
	f, err := openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, fs.FileMode(l.cfg.Perm))
	if err != nil {
		return err
	}
	_, err = f.Write(rec)
	if err == nil && l.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// retireFile moves the record file p (a reader's record, P/r.<uuid>)
// aside and removes it, if check approves what moved; otherwise puts it
// back. Every step is done inside the directory p is in, through one
// descriptor of it: never through a symlink a neighbour put at P
// meanwhile (P10). That directory is opened through o (nil: by name).
func retireFile(o *opDir, p string, check func([]byte) bool) (bool, error) {
	dir := filepath.Dir(p)
	d, err := o.openLockDir(dir)
	if byNameInstead(err, dir) { // (it refuses a symlink at dir)
		return retireByName(nil, p, false, check)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ok, err := retireIn(d, p, check)
	d.close()
	if errors.Is(err, errNoDescriptors) {
		// Put back (retireIn's read of what moved needs a second
		// descriptor): by name, with the one the directory's held. (Its
		// stale descriptor is no reason to go by name: that could act
		// through a symlink put at P since.)
		return retireByName(nil, p, false, check)
	}
	return ok, err
}

// retireAsideIn is Retire without keep for the record file p beside the
// lock, through o (retireIn), or by name where o has no directory open,
// or once a call through it fails for want of a descriptor (its
// put-back needs one) or with ESTALE.
func retireAsideIn(o *opDir, p string, check func([]byte) bool) (bool, error) {
	if d, _ := o.at(p); d != nil {
		if ok, err := retireIn(d, p, check); !o.byNameAfter(err) {
			return ok, err
		}
	}
	return retireByName(nil, p, false, check)
}

// byNameAfter reports whether a call through a descriptor of the user's
// directory failed for want of a descriptor, or for a stale one (a FUSE
// filesystem other than sshfs may name files by handle): the caller goes
// on by name, as the calls were made before.
func byNameAfter(err error) bool {
	return errors.Is(err, errNoDescriptors) || errors.Is(err, syscall.ESTALE)
}

// retireIn is Retire without keep for the record file p inside d, p's
// directory: a rename to a unique name, a read of what moved if check is
// not nil, and a remove, none of which looks the directory up again (on
// sshfs, a request per directory on the path at each call). What it
// should not have moved it puts back, as retireByName does, and for the
// same reasons.
func retireIn(d *lockDir, p string, check func([]byte) bool) (bool, error) {
	name := filepath.Base(p)
	dst, err := retireTarget(nil, p, func(dst string) error { return d.rename(name, filepath.Base(dst)) }, p, false, false)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	gone := filepath.Base(dst)
	if check != nil {
		moved, err := d.read(gone)
		if err != nil || !check(moved) {
			if rerr := d.rename(gone, name); rerr != nil {
				return false, rerr
			}
			return false, err
		}
	}
	if err := d.remove(gone); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, err
	}
	return true, nil
}

// writeAt writes b at off into e, synced where records must be.
func (l *Lock) writeAt(e Entry, b []byte, off int64) error {
	_, err := e.WriteAt(b, off)
	if err == nil && l.sync {
		err = e.Sync()
	}
	return err
}
