package lockdir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// File is an open file guarded by the lock directory at its name + ".lock":
// held shared while opened by OpenRead, exclusive while opened by
// OpenWrite. It has the methods of *os.File (Read, Write, Seek, Stat,
// Name, Sync, ...);
// Close closes the file and then releases the lock.
//
// This answers "open a file for reading only if nobody is writing it, and
// for writing only if nobody reads or writes it" — across processes, across
// hosts sharing the filesystem, and between handles in one process — and a
// crashed program does not keep the file locked.
type File struct {
	osFile
	lock   *dotlock.RWMutex
	shared bool
}

// osFile embeds the *os.File, for its methods, without exporting it:
// closing it directly would keep the lock.
type osFile struct{ *os.File }

// LockPath returns the lock directory that guards the file name.
func LockPath(name string) string { return name + ".lock" }

// OpenRead waits for a shared lock on name and opens it for reading. Any
// number of readers hold it together; a writer waits until they close.
func OpenRead(ctx context.Context, name string, opts ...dotlock.Option) (*File, error) {
	return open(ctx, name, true, func() (*os.File, error) { return os.Open(name) }, opts)
}

// OpenWrite waits for the exclusive lock on name and opens it with flag and
// perm, as os.OpenFile does. Readers and other writers wait until it closes.
// A writer that crashes while writing in place leaves what it wrote; use
// Transform or WriteFile to replace a file whole, so that no reader ever
// sees it half written.
func OpenWrite(ctx context.Context, name string, flag int, perm fs.FileMode, opts ...dotlock.Option) (*File, error) {
	return open(ctx, name, false, func() (*os.File, error) { return os.OpenFile(name, flag, perm) }, opts)
}

func open(ctx context.Context, name string, shared bool, openFile func() (*os.File, error), opts []dotlock.Option) (*File, error) {
	l, err := New(LockPath(name), opts...)
	if err != nil {
		return nil, err
	}
	if shared {
		err = l.RLock(ctx)
	} else {
		err = l.Lock(ctx)
	}
	if err != nil {
		return nil, err
	}
	f, err := openFile()
	if err != nil {
		unlock(l, shared)
		return nil, err
	}
	return &File{osFile: osFile{f}, lock: l, shared: shared}, nil
}

func unlock(l *dotlock.RWMutex, shared bool) error {
	if shared {
		return l.RUnlock()
	}
	return l.Unlock()
}

// Close closes the file and releases its lock. It returns the first error;
// an error matching ErrLost means the lock was lost while the file was open.
func (f *File) Close() error {
	err := f.osFile.Close()
	if uerr := unlock(f.lock, f.shared); err == nil {
		err = uerr
	}
	return err
}

// Token returns the fencing token of the lock held for the file.
func (f *File) Token() uint64 { return f.lock.Token() }

// Lost returns a channel closed if the file's lock is found lost.
func (f *File) Lost() <-chan struct{} { return f.lock.Lost() }

// Owner returns the record of the lock's holder (for a shared lock, the
// group's anchor).
func (f *File) Owner() (stale.Owner, error) { return f.lock.Owner() }

// ReadFile reads name whole under a shared lock.
func ReadFile(ctx context.Context, name string, opts ...dotlock.Option) ([]byte, error) {
	f, err := OpenRead(ctx, name, opts...)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// WriteFile replaces name whole with data under the exclusive lock: the data
// goes to a temporary file that is synced and renamed over name, so readers
// see the old content or the new, never a mix, even if the writer crashes.
func WriteFile(ctx context.Context, name string, data []byte, perm fs.FileMode, opts ...dotlock.Option) error {
	return Transform(ctx, name, perm, func([]byte) ([]byte, error) { return data, nil }, opts...)
}

// Transform reads name (empty if it does not exist), calls fn with its
// content and replaces the file with fn's result, all under the exclusive
// lock — a read-modify-write that no other reader or writer interleaves
// with, as long as the hold lasts: if it is found lost before the rename
// (its lease lapsed), the file is left as it was and the error matches
// ErrLost. If fn fails, the file is left as it was. perm is set on the new
// file as given (the umask does not apply), replacing the old file's mode.
func Transform(ctx context.Context, name string, perm fs.FileMode, fn func([]byte) ([]byte, error), opts ...dotlock.Option) error {
	l, err := New(LockPath(name), opts...)
	if err != nil {
		return err
	}
	if err := l.Lock(ctx); err != nil {
		return err
	}
	err = replace(name, perm, l.Lost(), fn)
	if uerr := l.Unlock(); err == nil {
		err = uerr
	}
	return err
}

func replace(name string, perm fs.FileMode, lost <-chan struct{}, fn func([]byte) ([]byte, error)) error {
	old, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := fn(old)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	select {
	case <-lost:
		// Unlock reports the loss (ErrLost), with how it happened.
		return nil
	default:
	}
	return lockcore.ReplaceFile(tmp.Name(), name)
}
