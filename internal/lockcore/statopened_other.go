//go:build !linux

package lockcore

import (
	"io/fs"
	"os"
)

// statOpened is the fstat of f, a record just opened (see the Linux one).
func statOpened(f *os.File) (fs.FileInfo, error) { return f.Stat() }

// sameFile reports whether a and b describe the same file.
func sameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }
