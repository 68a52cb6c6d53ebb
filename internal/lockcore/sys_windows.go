//go:build windows

package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
// has just made (see createOwner).
func createExclAt(dir, name string, perm fs.FileMode) (Entry, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return createOwner(root, filepath.Join(dir, name), perm)
}

func readRecordLocal(name string) ([]byte, error) { return readRecordFile(name) }

func rename(from, to string) error { return os.Rename(from, to) }

func rmdir(name string) error { return removeDir(name) }
