package lockcore

import (
	"io/fs"
	"os"
)

// writeEntry writes rec into the new entry e, synced where records must be.
func (l *Lock) writeEntry(e Entry, rec []byte) error {
	_, err := e.WriteAt(rec, 0)
	if err == nil && l.sync {
		err = e.Sync()
	}
	return err
}

// writeNewIn creates name exclusively inside the protocol's directory dir
// (P, or P.queue; never through a symlink at dir) with content rec.
func (l *Lock) writeNewIn(dir, name string, rec []byte) error {
	d, err := openLockDir(dir)
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

// retireFile moves the record file p aside (or to p's last slot if keep)
// and removes it, if check approves what moved; otherwise puts it back.
func retireFile(p string, keep bool, check func([]byte) bool) (bool, error) {
	return NewFileStore(p).Retire(keep, check)
}

// writeAt writes b at off into e, synced where records must be.
func (l *Lock) writeAt(e Entry, b []byte, off int64) error {
	_, err := e.WriteAt(b, off)
	if err == nil && l.sync {
		err = e.Sync()
	}
	return err
}
