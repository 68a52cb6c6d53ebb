//go:build windows

package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

type fileID struct{}

// errNoIdentity: the entry's identity cannot be compared here.
var errNoIdentity = errors.New("no file identity")

// pathID is not used on Windows: records are compared byte by byte.
func pathID(string) (fileID, error) { return fileID{}, errNoIdentity }

func localFS(string) bool { return false }

func createExclFile(name string, perm fs.FileMode) (Entry, error) {
	return openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

// createExclAt creates name inside the directory dir, which the caller
// has just made (see createOwner); by name (o is not used here).
func createExclAt(_ *opDir, dir, name string, perm fs.FileMode) (Entry, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return createOwner(root, filepath.Join(dir, name), perm)
}

func readRecordLocal(name string) ([]byte, error) { return readRecordFile(name) }

// readRecordLocalOwner is readRecordLocal; Windows has no owner uid to tell
// (*owner is left as it is).
func readRecordLocalOwner(name string, _ *int) ([]byte, error) { return readRecordFile(name) }

// rename replaces to with from, as rename(2) does. Windows refuses to
// replace a file that another process has open, or one removed but still
// open (delete-pending), with "Access denied"; such a file is first moved
// out of the way, which a handle shared for deletion permits (see
// clearSlot), and then removed. It also refuses, with a sharing violation,
// to move what another process has open without sharing it for deletion (a
// lock directory being listed, say): that is brief, and waited out.
func rename(from, to string) error {
	osRename := func(from, to string) error {
		return whileBusy(func() error { return os.Rename(from, to) }, busyErrno, 50*time.Microsecond, 5*time.Millisecond)
	}
	err := osRename(from, to)
	for try := 0; err != nil && errors.Is(err, fs.ErrPermission) && try < 3; try++ {
		st, lerr := os.Lstat(to)
		if lerr != nil || !st.Mode().IsRegular() {
			break // not a file in the way: the refusal is real
		}
		aside := tempName(to)
		if osRename(to, aside) != nil {
			break
		}
		os.Remove(aside)
		err = osRename(from, to)
	}
	return err
}

func rmdir(name string) error { return removeDir(name) }

// knownNetworkFS: not told here (no statfs kinds); reads are taken as exact.
func knownNetworkFS(string) bool { return false }

// touchNow: W7's marks, as W6, apply only where network filesystems are
// told (knownNetworkFS).
func touchNow(string) error { return nil }

// entryStamp tells the file at name from another that replaced it: its
// creation and last write times (ok is false if it cannot be looked at).
// NTFS gives a file made again under a name just freed the old one's
// creation time (tunnelling), but not its last write time.
func entryStamp(name string) (string, bool) {
	fi, err := os.Lstat(name)
	if err != nil {
		return "", false
	}
	d, ok := fi.Sys().(*syscall.Win32FileAttributeData)
	if !ok {
		return "", false
	}
	return fmt.Sprint(d.CreationTime, d.LastWriteTime), true
}

// spareDescriptor: Windows has no per-process descriptor limit to meet.
func spareDescriptor() func() { return func() {} }
