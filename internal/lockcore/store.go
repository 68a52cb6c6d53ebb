package lockcore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/dotlock/dotlock/stale"
)

// Entry is a freshly created lock entry, open for writing its record.
type Entry interface {
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
	Close() error
}

// Store is the on-disk primitive under a lock: everything the protocol in
// lock.go needs from the filesystem, and nothing else. FileStore and DirStore
// implement it.
type Store interface {
	// Path is the lock path, for errors.
	Path() string
	// Create atomically creates an empty entry at the lock path, failing if
	// anything exists there. It never follows a symlink at the path.
	Create(perm fs.FileMode) (Entry, error)
	// Read returns the record at the lock path (at most MaxRecordSize+1
	// bytes; empty while an entry has no record yet). It fails with an
	// error matching fs.ErrNotExist when there is no entry.
	Read() ([]byte, error)
	// ReadLast returns the record of the last hold that left the path: the
	// one with the highest token in the last-record chain (slots.go).
	ReadLast() ([]byte, error)
	// Retire atomically moves the record away from the lock path — to the
	// last-record slot if keep, else to a unique name that is then removed —
	// and frees the path, but only if check approves the record it moved;
	// otherwise it puts the record back and returns false. A nil check
	// approves without reading: a holder releasing its own record, which it
	// has just verified, must not read the last-record slot after the path
	// is free, since a successor may already have taken the path and left
	// it again, replacing what was moved there.
	Retire(keep bool, check func(moved []byte) bool) (bool, error)
}

// readRecord reads a record file without following a symlink at name and
// without blocking on a planted FIFO, and bounds what it reads.
func readRecord(name string) ([]byte, error) {
	if directFlag(filepath.Dir(name)) == 0 {
		return readRecordLocal(name)
	}
	return readRecordFile(name)
}

// readRecordFile is readRecord through package os, which copes with
// O_DIRECT's demands.
func readRecordFile(name string) ([]byte, error) {
	if err := refuseSymlink(name); err != nil {
		return nil, err
	}
	flags := os.O_RDONLY | oNoFollow | oNonblock
	direct := directFlag(filepath.Dir(name))
	f, err := openFile(name, flags|direct, 0)
	if err != nil && direct != 0 && errors.Is(err, syscall.EINVAL) {
		f, err = openFile(name, flags, 0) // no direct I/O here
	}
	if err != nil {
		return nil, noFollowError(name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRecord{"not a lock record: " + describe(st.Mode())}}
	}
	b, err := io.ReadAll(io.LimitReader(f, stale.MaxRecordSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return vetRecord(name, b, func() string { return ownedBy(st.Sys()) })
}

// ErrNotRecord says that something other than a record file stands where a
// record should be: a symlink (never followed), a FIFO, a directory, a file
// whose content no dotlock wrote. It matches ErrNotLock.
type ErrNotRecord struct{ Msg string }

func (e ErrNotRecord) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrNotLock) true.
func (e ErrNotRecord) Is(target error) bool { return target == ErrNotLock }

// vetRecord is data, read from the regular file name, if it may be a
// record; else an error matching ErrNotLock that says what it is and
// whose (owner describes the file's owner, as ownedBy does).
func vetRecord(name string, data []byte, owner func() string) ([]byte, error) {
	if stale.LooksLikeRecord(data) {
		return data, nil
	}
	what := fmt.Sprintf("a file of %d bytes", len(data))
	if len(data) > stale.MaxRecordSize {
		what = fmt.Sprintf("a file of more than %d bytes", stale.MaxRecordSize)
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRecord{fmt.Sprintf(
		"not a dotlock record (%s%s); dotlock leaves it alone: have it removed (by its owner, or root), or use another lock path",
		what, owner())}}
}

// tempName is a unique sibling of path, for records on their way out.
func tempName(path string) string {
	return path + goneInfix + uuid.NewString()[:goneIDLen]
}

const (
	goneInfix = ".gone."
	goneIDLen = 13
)

// recordPath is the file holding the store's record.
func recordPath(s Store) string {
	if ds, ok := s.(*DirStore); ok {
		return ds.owner()
	}
	return s.Path()
}

// entryID is the device and inode of entry e, where they can be told.
func entryID(e Entry) (fileID, bool) {
	ie, ok := e.(interface{ identity() (fileID, error) })
	if !ok {
		return fileID{}, false
	}
	id, err := ie.identity()
	return id, err == nil
}

// idAt reports whether the file at name is id; known is false where that
// cannot be told (then compare records).
func idAt(id fileID, name string) (at, known bool) {
	pid, err := pathID(name)
	if err != nil {
		return false, errors.Is(err, fs.ErrNotExist)
	}
	return id == pid, true
}

// FileStore keeps the lock as a file created with O_CREATE|O_EXCL; the
// file's content is the owner record.
type FileStore struct{ path string }

// NewFileStore returns the store for a lock file at path.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

func (s *FileStore) Path() string { return s.path }

func (s *FileStore) Create(perm fs.FileMode) (Entry, error) {
	return createExclFile(s.path, perm)
}

func (s *FileStore) Read() ([]byte, error) { return readRecord(s.path) }

func (s *FileStore) ReadLast() ([]byte, error) { return readLast(s.path) }

func (s *FileStore) Retire(keep bool, check func([]byte) bool) (bool, error) {
	dst, err := retireTarget(s.path, func(dst string) error { return rename(s.path, dst) }, s.path, keep)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if check != nil {
		moved, err := readRecord(dst)
		if err != nil || !check(moved) {
			// Put back what we should not have moved. Any entry created at
			// the path meanwhile is undecided (its creator waits for the
			// guard this caller holds, and verifies afterwards), so
			// replacing it is safe; and while the guard is held no successor
			// can take the path and leave it again, so what is at dst is
			// what we moved.
			if rerr := rename(dst, s.path); rerr != nil {
				return false, rerr
			}
			return false, err
		}
	}
	if !keep {
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, err
		}
	}
	return true, nil
}

// DirStore keeps the lock as a directory created with os.Mkdir; the owner
// record is the file "owner" inside it. Other names inside are reserved
// for shared holders.
type DirStore struct{ path string }

// NewDirStore returns the store for a lock directory at path.
func NewDirStore(path string) *DirStore { return &DirStore{path: path} }

// OwnerFile is the name of the record inside a lock directory.
const OwnerFile = "owner"

func (s *DirStore) Path() string { return s.path }

func (s *DirStore) owner() string { return s.path + string(os.PathSeparator) + OwnerFile }

func (s *DirStore) Create(perm fs.FileMode) (Entry, error) {
	if err := os.Mkdir(s.path, perm|(perm&0o444)>>2); err != nil {
		return nil, err
	}
	f, err := createExclAt(s.path, OwnerFile, perm)
	if err != nil {
		rmdir(s.path) // our own empty directory; leave no ownerless lock behind
		return nil, &fs.PathError{Op: "create", Path: s.owner(), Err: unwrapPath(err)}
	}
	return f, nil
}

func (s *DirStore) Read() ([]byte, error) {
	b, err := s.read()
	if errors.Is(err, errNoDescriptors) {
		// Out of descriptors: a release must still work, and this way
		// needs one less. By name, after checking P is no symlink.
		if b, err = readIn(s.path, OwnerFile); errors.Is(err, fs.ErrNotExist) {
			_, err = os.Lstat(s.path)
		}
	}
	return b, err
}

func (s *DirStore) read() ([]byte, error) {
	d, err := openLockDir(s.path) // refuses a symlink, a file, a FIFO at the path
	if err != nil {
		return nil, err
	}
	defer d.close()
	b, err := d.read(OwnerFile)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, err
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

func (s *DirStore) ReadLast() ([]byte, error) { return readLast(s.path) }

func (s *DirStore) Retire(keep bool, check func([]byte) bool) (bool, error) {
	// Everything is done inside the directory at the path when we look,
	// never through a symlink put there.
	d, err := openLockDir(s.path)
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
	}
	moved := false
	dst, err := retireTarget(s.owner(), func(dst string) error { return d.moveOut(OwnerFile, dst) }, s.path, keep)
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
		got, err := readRecord(dst)
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
		return s.notEmpty(moved, dst)
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
	err := rmdir(s.path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, lerr := os.Lstat(s.path); errors.Is(lerr, fs.ErrNotExist) {
		return nil // removed, but the reply was lost
	}
	return err
}

// notEmpty finishes a Retire whose rmdir found the directory not empty.
func (s *DirStore) notEmpty(moved bool, dst string) (bool, error) {
	// Listed, and the record put back, through a descriptor of the
	// directory: never through a symlink (nor blocking on a FIFO) that a
	// neighbour put at the path since it was opened.
	d, err := openLockDir(s.path)
	if err != nil {
		return moved, err
	}
	defer d.close()
	names, err := d.names()
	if err != nil {
		return moved, err
	}
	// Shared holders inside: put the record back (unless a new anchor
	// stands there already), the directory is still held.
	if hasReaders(names) {
		if _, lerr := os.Lstat(s.owner()); moved && errors.Is(lerr, fs.ErrNotExist) {
			if rerr := d.moveIn(dst, OwnerFile); rerr != nil {
				return false, rerr
			}
		}
		return false, nil
	}
	// A record again: this caller was paused past the grace period
	// between moving its record out and removing the directory, the empty
	// directory was broken, and the path is someone else's now. Ours is
	// gone; theirs stays.
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
	// Only what a network filesystem leaves of a removed file still open
	// (.nfsXXXX): move the directory aside, so that the path is free, and
	// remove it if it is empty by now (else it stays, as P.gone.<id>).
	aside := tempName(s.path)
	if err := rename(s.path, aside); err != nil {
		return moved, err
	}
	rmdir(aside)
	return true, nil
}

func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink; dotlock never follows one at a lock path"
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	}
	return "a " + m.Type().String() + " file"
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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

func hasReaders(names []string) bool {
	for _, n := range names {
		if readerName(n) {
			return true
		}
	}
	return false
}
