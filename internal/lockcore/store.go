package lockcore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/dotlock/dotlock/stale"
	"github.com/google/uuid"
)

// Entry is a freshly created lock entry, open for writing its record.
type Entry interface {
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
	Close() error
}

// Store is the on-disk primitive under a lock: everything the protocol
// needs from the filesystem, and nothing else. FileStore and DirStore
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

	// at is the store making its calls through o, the directory the lock
	// path is in, opened for one operation (nil: by name).
	at(o *opDir) Store
	// opDir is the directory the store's calls go through (nil: by name).
	opDir() *opDir
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
	b, _, err := readRecordFileFlags(name, 0)
	return b, err
}

// errReadElsewhere: the file read was not the one at the name by then.
var errReadElsewhere = errors.New("the file read is no longer the one at this name (replaced meanwhile, or an old copy served by the filesystem's client)")

// readSlot reads a last-record slot (A3). A network filesystem's client
// may serve an old copy of a file that another host replaced by rename:
// on SMB mounted with cache=none, the releaser's check of what it moved
// into P.last (Retire) leaves cifs a handle on that file, which cifs hands
// to the next open of the path with the same flags, for as long as it is
// opened again within a second — after another host replaced P.last, the
// same token was issued twice. So the slot is read with a flag no other
// read uses (O_DSYNC; nothing for a read), and what was read must be the
// file at the name now: if not, it is read once more with other flags
// (cifs then drops the handle it kept), and else reported as
// errReadElsewhere (the acquirer gives its entry up and comes back: never
// a smaller token). That check is made only where the client may hand an
// open a file it kept (SMB): elsewhere the open resolves the name as an
// lstat would, so the check could not find what the open missed, and on
// sshfs it cost 3 of the 48 requests of a lock+unlock. An open's EINVAL is
// read again with other flags everywhere, never taken for a missing slot.
func readSlot(name string) ([]byte, error) {
	dir := filepath.Dir(name)
	if directFlag(dir) == 0 {
		return readSlotLocal(name) // local: exact
	}
	for _, extra := range []int{slotFlag, 0} {
		b, st, err := readRecordFileFlags(name, extra)
		if errors.As(err, new(replacedFile)) {
			continue // never taken for a missing slot: tokens would restart
		}
		if err != nil {
			return nil, err
		}
		if !keepsHandles(dir) || st.at(name) {
			return b, nil
		}
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: errReadElsewhere}
}

// replacedFile is the EINVAL an SMB client gives for opening a name that
// another host replaced while this client keeps a lease on the old file:
// for the record at the lock path, the file is gone (the hold's record is
// not there); a last-record slot is re-read instead (readSlot).
type replacedFile struct{}

func (replacedFile) Error() string {
	return "invalid argument (this client holds the file once at this name, which another host replaced)"
}
func (replacedFile) Is(target error) bool { return target == fs.ErrNotExist }
func (replacedFile) Unwrap() error        { return syscall.EINVAL }

// readRecordFileFlags is readRecordFile, opening with extra flags, and
// also returns what fstat said of the file read.
func readRecordFileFlags(name string, extra int) ([]byte, *openedStat, error) {
	if err := refuseSymlink(name); err != nil {
		return nil, nil, err
	}
	flags := os.O_RDONLY | oNoFollow | oNonblock | extra
	direct := directFlag(filepath.Dir(name))
	f, err := openFile(name, flags|direct, 0)
	if err != nil && direct != 0 && errors.Is(err, syscall.EINVAL) {
		f, err = openFile(name, flags, 0) // no direct I/O here
		if err != nil && errors.Is(err, syscall.EINVAL) {
			// SMB, both ways: the name leads to another file than the
			// one this client has cached (and holds a lease on) — another
			// host replaced it. Measured: a SIGSTOPped holder, resumed
			// after a takeover, got EINVAL at every beat and never
			// learnt of its loss.
			return nil, nil, &fs.PathError{Op: "open", Path: name, Err: replacedFile{}}
		}
	}
	if err != nil {
		return nil, nil, goneErr(noFollowError(name, err))
	}
	defer f.Close()
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { noDeferredClose(int(fd), filepath.Dir(name)) })
	}
	st, err := statOpened(f)
	if err != nil {
		return nil, nil, goneErr(err)
	}
	if !st.mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRecord{Msg: "not a lock record: " + describe(st.mode())}}
	}
	b, err := readFew(f)
	if err == nil && cutShort(b, func() (int64, bool) { return serverSizeOf(f) }) {
		if _, err = f.Seek(0, io.SeekStart); err == nil {
			b, err = readFew(f)
		}
	}
	if err != nil {
		return nil, nil, goneErr(err) // an *fs.PathError naming the file
	}
	b, err = vetRecord(name, b, st.owner)
	return b, st, err
}

// readFew reads at most MaxRecordSize+1 bytes of a record file in as few
// reads as it can: on a network filesystem with direct I/O each read is a
// round trip, and io.ReadAll's growing buffer took three for a padded
// record, and a fourth to see the end.
func readFew(r io.Reader) ([]byte, error) {
	buf := make([]byte, stale.MaxRecordSize+1)
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if m > 0 && readAll(buf[:n], len(buf)) {
			break
		}
	}
	return buf[:n], nil
}

// readAll reports whether got, read into a buffer of size bytes and short
// of filling it, is the whole record file: it ends with a record's last
// line. A regular file reads short only at its end, and Parse ignores
// what follows "end"; so no read more is needed to see the end of file.
func readAll(got []byte, size int) bool {
	return len(got) < size && bytes.HasSuffix(got, recordEnd)
}

// cutShort reports whether got, read from a record file on a network
// filesystem, is short of a whole record (empty, or no end line) while
// the server has more of the file (serverSize, called only then): the
// client cut the read to a size it had cached, and the file must be read
// again. An entry being written reads short at the server too, and costs
// that one question more.
func cutShort(got []byte, serverSize func() (int64, bool)) bool {
	if bytes.HasSuffix(got, recordEnd) {
		return false
	}
	size, ok := serverSize()
	return ok && size > int64(len(got))
}

// recordEnd is how every record ends (package stale).
var recordEnd = []byte("\nend\n")

// ErrNotRecord says that something other than a record file stands where a
// record should be: a symlink (never followed), a FIFO, a directory, a file
// whose content no dotlock wrote. It matches ErrNotLock.
type ErrNotRecord struct {
	Msg     string
	Content []byte // what was read, for a regular file whose content is no record's
}

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
	what := fmt.Sprintf("a file of %d bytes starting %q", len(data), data[:min(len(data), 16)])
	if len(data) > stale.MaxRecordSize {
		what = fmt.Sprintf("a file of more than %d bytes", stale.MaxRecordSize)
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRecord{Msg: fmt.Sprintf(
		"not a dotlock record (%s%s); dotlock leaves it alone: have it removed (by its owner, or root), or use another lock path",
		what, owner()), Content: data}}
}

// tempName is a unique sibling of path, for records on their way out.
func tempName(path string) string {
	return path + goneInfix + uuid.NewString()[:goneIDLen]
}

const (
	goneInfix = ".gone."
	goneIDLen = 13
)

// entryID is the device and inode of entry e, where they can be told.
func entryID(e Entry) (fileID, bool) {
	ie, ok := e.(interface{ identity() (fileID, error) })
	if !ok {
		return fileID{}, false
	}
	id, err := ie.identity()
	return id, err == nil
}

// localEntryID is entryID where local says the filesystem is local; else
// nothing, without asking (on a network filesystem an fstat is a request
// to the server, and an inode compare is not exact there).
func localEntryID(e Entry, local bool) (fileID, bool) {
	if !local {
		return fileID{}, false
	}
	return entryID(e)
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
type FileStore struct {
	path string
	in   *opDir // (at)
}

// NewFileStore returns the store for a lock file at path.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

func (s *FileStore) Path() string { return s.path }

func (s *FileStore) at(o *opDir) Store {
	if o == nil {
		return s
	}
	return &FileStore{path: s.path, in: o}
}

func (s *FileStore) opDir() *opDir { return s.in }

func (s *FileStore) Create(perm fs.FileMode) (Entry, error) {
	return s.in.create(s.path, perm)
}

func (s *FileStore) Read() ([]byte, error) { return s.in.read(s.path) }

func (s *FileStore) ReadLast() ([]byte, error) { return readLast(s.in, s.path) }

func (s *FileStore) Retire(keep bool, check func([]byte) bool) (bool, error) {
	if !keep && dirHandles(filepath.Dir(s.path)) {
		// A guard broken, an acquirer giving its entry up, a record
		// that names no holder broken (B4): in the user's directory,
		// through one descriptor of it (opDir).
		o := s.in
		if o == nil {
			o = openOpDir(s.path)
			defer o.close()
		}
		return retireAsideIn(o, s.path, check)
	}
	return retireByName(s.in, s.path, keep, check)
}

// retireByName is FileStore.Retire for the record file at path, by name,
// or through o.
func retireByName(o *opDir, path string, keep bool, check func([]byte) bool) (bool, error) {
	dst, err := retireTarget(o, path, func(dst string) error { return o.rename(path, dst) }, path, keep, check == nil)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if check != nil {
		moved, err := o.read(dst)
		if err != nil || !check(moved) {
			// Put back what we should not have moved. Any entry created at
			// the path meanwhile is undecided (its creator waits for the
			// guard this caller holds, and verifies afterwards), so
			// replacing it is safe; and while the guard is held no successor
			// can take the path and leave it again, so what is at dst is
			// what we moved.
			if rerr := o.rename(dst, path); rerr != nil {
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
