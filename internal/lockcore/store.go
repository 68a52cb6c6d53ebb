package lockcore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	return b, nil
}

// ErrNotRecord says that something other than a record file stands where a
// record should be: a symlink (never followed), a FIFO, a directory...
type ErrNotRecord struct{ Msg string }

func (e ErrNotRecord) Error() string { return e.Msg }

// tempName is a unique sibling of path, for records on their way out.
func tempName(path string) string {
	return path + ".gone." + uuid.NewString()[:13]
}

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

// renameOut renames a record out of the path. A rename to a unique name
// that fails, yet whose target exists, happened: its reply was lost (an NFS
// retransmission, P6). Going on as if it had succeeded lets the caller's
// check put back what it should not have moved, instead of leaving it
// aside, and the lock path free.
func renameOut(src, dst string, keep bool) error {
	err := rename(src, dst)
	if err != nil && !keep {
		if _, lerr := os.Lstat(dst); lerr == nil {
			return nil
		}
	}
	return err
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
	dst, err := retireTarget(s.path, s.path, keep)
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
	st, err := os.Lstat(s.path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: s.path, Err: fmt.Errorf("not a lock directory (%s)", describe(st.Mode()))}
	}
	b, err := readRecord(s.owner())
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Lstat(s.path); err != nil {
			return nil, err
		}
		return nil, nil // a directory without a record yet
	}
	return b, err
}

func (s *DirStore) ReadLast() ([]byte, error) { return readLast(s.path) }

func (s *DirStore) Retire(keep bool, check func([]byte) bool) (bool, error) {
	dst, err := retireTarget(s.owner(), s.path, keep)
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
		moved, err := readRecord(dst)
		if err != nil || !check(moved) {
			if rerr := rename(dst, s.owner()); rerr != nil {
				os.Remove(dst)
				return false, rerr
			}
			return false, err
		}
		fallthrough
	default:
		if !keep {
			os.Remove(dst)
		}
	}
	// The directory is ours to remove: no one else can create the path
	// while it exists, and no one else takes records out of it while we
	// hold it (or, when breaking, hold the guard).
	if err := rmdir(s.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if _, lerr := os.Lstat(s.path); errors.Is(lerr, fs.ErrNotExist) {
			return true, nil // removed, but the reply was lost
		}
		names, _ := readDirNames(s.path)
		// Not empty. Shared holders inside: put the record back (unless a
		// new anchor stands there already), the directory is still held.
		if hasReaders(names) {
			if _, lerr := os.Lstat(s.owner()); errors.Is(lerr, fs.ErrNotExist) {
				if rerr := rename(dst, s.owner()); rerr != nil {
					return false, rerr
				}
			}
			return false, nil
		}
		// A record again: this caller was paused past the grace period
		// between moving its record out and removing the directory, the
		// empty directory was broken, and the path is someone else's now.
		// Ours is gone; theirs stays.
		for _, n := range names {
			if n == OwnerFile {
				return true, nil
			}
		}
		// Stray files: move the whole directory aside first, so that the
		// path is free at once, then clear it.
		aside := tempName(s.path)
		if rerr := rename(s.path, aside); rerr != nil {
			return true, rerr
		}
		return true, os.RemoveAll(aside)
	}
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
		if strings.HasPrefix(n, readerPrefix) {
			return true
		}
	}
	return false
}
