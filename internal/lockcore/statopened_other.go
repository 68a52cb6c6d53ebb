//go:build !linux

package lockcore

import (
	"io/fs"
	"os"
)

// openedStat is what readRecordFileFlags learns of the file it opened.
type openedStat struct{ fi fs.FileInfo }

// statOpened is the fstat of f, a record just opened (see the Linux one).
func statOpened(f *os.File) (*openedStat, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &openedStat{fi}, nil
}

// serverSizeOf is the size fstat reports of f (see the Linux one).
func serverSizeOf(f *os.File) (int64, bool) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

func (s *openedStat) mode() fs.FileMode { return s.fi.Mode() }
func (s *openedStat) owner() string     { return ownedBy(s.fi.Sys()) }

// at reports whether the file at name (not following a symlink) is the
// one opened.
func (s *openedStat) at(name string) bool {
	now, err := os.Lstat(name)
	return err == nil && os.SameFile(s.fi, now)
}
