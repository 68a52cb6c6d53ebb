package lockcore

import (
	"errors"
	"io/fs"
	"os"
)

// DirStore keeps the lock as a directory created with os.Mkdir; the owner
// record is the file "owner" inside it. Other names inside are reserved
// for shared holders.
type DirStore struct {
	path string
	in   *opDir // (at)
}

// NewDirStore returns the store for a lock directory at path.
func NewDirStore(path string) *DirStore { return &DirStore{path: path} }

// OwnerFile is the name of the record inside a lock directory.
const OwnerFile = "owner"

func (s *DirStore) Path() string { return s.path }

func (s *DirStore) owner() string { return s.path + string(os.PathSeparator) + OwnerFile }

func (s *DirStore) at(o *opDir) Store { return s.bound(o) }

// bound is the store reached through o (nil: by name).
func (s *DirStore) bound(o *opDir) *DirStore {
	if o == nil {
		return s
	}
	return &DirStore{path: s.path, in: o}
}

func (s *DirStore) opDir() *opDir { return s.in }

func (s *DirStore) Create(perm fs.FileMode) (Entry, error) {
	if err := s.in.mkdir(s.path, perm|(perm&0o444)>>2); err != nil {
		return nil, err
	}
	f, err := createExclAt(s.in, s.path, OwnerFile, perm)
	if err != nil {
		s.in.rmdir(s.path) // our own empty directory; leave no ownerless lock behind
		return nil, &fs.PathError{Op: "create", Path: s.owner(), Err: unwrapPath(err)}
	}
	return f, nil
}

func (s *DirStore) Read() ([]byte, error) {
	b, err := s.read()
	if errors.Is(err, errNoDescriptors) {
		// Out of descriptors: a release must still work, and this way
		// needs one less. By name, after checking P is no symlink.
		if b, err = readIn(nil, s.path, OwnerFile); errors.Is(err, fs.ErrNotExist) {
			_, err = os.Lstat(s.path)
		}
	}
	return b, err
}

func (s *DirStore) read() ([]byte, error) {
	d, err := s.in.openLockDir(s.path) // refuses a symlink, a file, a FIFO at the path
	if err != nil {
		return nil, err
	}
	defer d.close()
	b, err := d.read(OwnerFile)
	if !errors.Is(err, fs.ErrNotExist) || undecidedGone(err) {
		return b, err // (an SMB client's EINVAL: the record may be there)
	}
	// No record: a directory being made or released — or not a lock at
	// all, which is told at once, not after the grace period. (Not on
	// Windows, where listing it could keep its holder from removing it:
	// there Retire tells, before it would remove anything.)
	if listOwnerless {
		names, err := d.names()
		if err != nil {
			return nil, err
		}
		if f := foreignNames(names); len(f) > 0 {
			return nil, notLockDir(s.path, f)
		}
	}
	if _, err := os.Lstat(s.path); err != nil {
		return nil, err // gone meanwhile
	}
	return nil, nil
}

func (s *DirStore) ReadLast() ([]byte, error) { return readLast(s.in, s.path) }

func (s *DirStore) Retire(keep bool, check func([]byte) bool) (bool, error) {
	// Everything is done inside the directory at the path when we look,
	// never through a symlink put there.
	open := s.in.openLockDir
	if check != nil {
		open = s.in.openLockDirToList
	}
	d, err := open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() { d.close() }()
	if check != nil {
		// Someone else's directory, perhaps (a breaker's victim): act only
		// on one that holds nothing the protocol does not make.
		names, err := d.names()
		if err != nil {
			return false, err
		}
		if f := foreignNames(names); len(f) > 0 {
			return false, notLockDir(s.path, f)
		}
		if hasReaders(names) {
			// Shared holders inside: the rmdir would fail and the record
			// be put back (notEmpty). Leaving it saves two renames, a read
			// and a second listing at each reader's leave but the last.
			return false, nil
		}
	}
	moved := false
	dst, err := retireTarget(s.in, s.owner(), func(dst string) error { return s.in.moveOut(d, OwnerFile, dst) }, s.path, keep, check == nil)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No record: the victim, if approved, is an empty directory.
		if _, lerr := os.Lstat(s.path); lerr != nil {
			return false, nil
		}
		if check == nil || !check(nil) {
			return false, nil
		}
	case err != nil:
		return false, err
	case check != nil:
		got, err := s.in.read(dst)
		if errors.Is(err, errNoDescriptors) {
			// Ours is the one descriptor left: read without it, then
			// take it again (for a put-back).
			d.close()
			got, err = readRecord(dst)
			if nd, err2 := openLockDir(s.path); err2 == nil {
				d = nd
			} else if err == nil && !check(got) {
				return false, err2 // cannot put it back; it stays at dst
			}
		}
		if err != nil || !check(got) {
			// Not what was judged: put it back (if that fails, it stays
			// at dst; it is not ours to remove).
			if rerr := d.moveIn(dst, OwnerFile); rerr != nil {
				return false, rerr
			}
			return false, err
		}
		fallthrough
	default:
		moved = true
		if !keep {
			os.Remove(dst)
		}
	}
	if err := s.removeDir(); err != nil {
		return s.notEmpty(d, moved, dst, check == nil)
	}
	return true, nil
}

// removeDir removes the lock directory, now without a record; nil also if
// it is gone.
func (s *DirStore) removeDir() error {
	// The directory is ours to remove: no one else can create the path
	// while it exists, and no one else takes records out of it while we
	// hold it (or, when breaking, hold the guard). rmdir never removes
	// anything inside.
	err := s.in.rmdir(s.path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, lerr := os.Lstat(s.path); errors.Is(lerr, fs.ErrNotExist) {
		return nil // removed, but the reply was lost
	}
	return err
}

// notEmpty finishes a Retire whose rmdir of d, the directory it moved
// the record out of, failed while something stands at the path; own says
// the Retire is a release (R2), made without the guard.
//
// It lists d, and puts the record back into d: the directory it took the
// record from, not whatever the path names now. The rmdir may have gone
// through with its reply lost (P6), and the path be another's lock
// directory by now, just made: a new shared group's, whose readers a
// listing by name showed — the record was put back into it as its anchor,
// and the release took itself for lost (a fault schedule found it) — or
// one whose record is not created yet, which was moved aside. The
// directory removed lists empty. Never through a symlink (nor blocking on
// a FIFO) that a neighbour put at the path since.
func (s *DirStore) notEmpty(d *lockDir, moved bool, dst string, own bool) (bool, error) {
	names, err := d.names()
	if errors.Is(err, fs.ErrNotExist) {
		return moved, nil
	}
	if err != nil {
		return moved, err
	}
	// Shared holders inside: put the record back (unless a new anchor
	// stands there already), the directory is still held. Not after a
	// release: an exclusive hold's directory has no readers, so these
	// are a new group's, and the rmdir went through (on FUSE, sshfs, a
	// descriptor names a path, not a directory: d lists what the path
	// names now).
	if hasReaders(names) && own {
		return moved, nil
	}
	if hasReaders(names) {
		if _, lerr := d.lstat(OwnerFile); moved && errors.Is(lerr, fs.ErrNotExist) {
			if rerr := d.moveIn(dst, OwnerFile); rerr != nil {
				return false, rerr
			}
		}
		return false, nil
	}
	// A record in it again: someone else's (the directory, empty past the
	// grace period, was taken over: P5). Ours is gone; theirs stays.
	for _, n := range names {
		if n == OwnerFile {
			return true, nil
		}
	}
	if f := foreignNames(names); len(f) > 0 {
		// Someone put a file of their own in it: theirs, not ours to
		// remove. The path stays taken, and says why (ErrNotLock).
		return moved, notLockDir(s.path, f)
	}
	if len(names) == 0 && own {
		// Removed (its rmdir's reply lost), and the path perhaps another
		// acquirer's already, which it may verify (A6) before a move
		// aside: left alone. If it is ours after all (an rmdir that failed
		// otherwise), the next acquirer frees it after the grace period
		// (P5), under the guard — as a breaker, below: an acquirer waits
		// for the guard (A5) before it verifies, so what a breaker moves
		// aside is never a verified lock.
		return moved, nil
	}
	// Nothing, or only what a network filesystem leaves of a removed
	// file still open (.nfsXXXX): move the directory aside, so that the
	// path is free, and remove it if it is empty by now (else it stays,
	// as P.gone.<id>).
	aside := tempName(s.path)
	if err := rename(s.path, aside); err != nil {
		if _, lerr := os.Lstat(s.path); errors.Is(lerr, fs.ErrNotExist) {
			// Removed meanwhile (Wine, 1 waiter in 500 of a crowd: the
			// empty directory broken by another, "File not found"):
			// nothing left to free.
			return moved, nil
		}
		return moved, err
	}
	rmdir(aside)
	return true, nil
}

func hasReaders(names []string) bool {
	for _, n := range names {
		if readerName(n) {
			return true
		}
	}
	return false
}
