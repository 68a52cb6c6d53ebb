//go:build unix

package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// ownerOf is the uid of the file name (not following a symlink).
func ownerOf(name string) (int, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(name, &st); err != nil {
		return 0, false
	}
	return int(st.Uid), true
}

// unwrapAll is the errno inside err, if there is one.
func unwrapAll(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

var (
	stickyDirs    sync.Map // directory -> bool
	stickyDirsLen atomic.Int64
)

// stickyDir reports whether dir has the sticky bit (as /tmp has): there
// no one but its owner (and root) may rename over or remove a file. Cached:
// a directory's mode rarely changes.
func stickyDir(dir string) bool {
	if v, ok := stickyDirs.Load(dir); ok {
		return v.(bool)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return true // unknown: as if sticky (rename over, never aside)
	}
	v := st.Mode()&fs.ModeSticky != 0
	if stickyDirsLen.Add(1) > 4096 {
		stickyDirs.Clear()
		stickyDirsLen.Store(1)
	}
	stickyDirs.Store(dir, v)
	return v
}

// explainRename says whose file it is when a rename is refused because of
// another user's file: the source, or else the target it would replace.
func explainRename(from, to string, errno error) error {
	if errno != syscall.EPERM && errno != syscall.EACCES {
		return errno
	}
	if foreignFile(from) {
		return explainForeign(from, errno)
	}
	if foreignFile(to) {
		return explainForeign(to, errno)
	}
	return errno
}
