//go:build unix

package lockcore

import (
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// lineFile is a host line's local file, open; its flock is the head.
type lineFile struct{ fd int }

// openHostLine opens (making it if need be) the line file name in this
// user's private directory of lines, $TMPDIR/dotlock-lines-UID, which
// must be a real directory this user owns and no one else may enter: in
// a directory others may write, a planted file could hold the head for
// ever (and followers would look only once a heartbeat period).
func openHostLine(name string) (lineFile, bool) {
	uid := os.Geteuid()
	dir := filepath.Join(os.TempDir(), "dotlock-lines-"+strconv.Itoa(uid))
	if err := unix.Mkdir(dir, 0o700); err != nil && err != unix.EEXIST {
		return lineFile{}, false
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return lineFile{}, false
	}
	defer unix.Close(dfd)
	if !privateTo(dfd, uid, unix.S_IFDIR) {
		return lineFile{}, false
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return lineFile{}, false
	}
	if !privateTo(fd, uid, unix.S_IFREG) {
		unix.Close(fd)
		return lineFile{}, false
	}
	return lineFile{fd: fd}, true
}

// privateTo reports whether fd is of type typ, owned by uid, and closed
// to group and others.
func privateTo(fd, uid int, typ uint32) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	mode := uint32(st.Mode) // uint16 on some systems
	return mode&unix.S_IFMT == typ && int(st.Uid) == uid && mode&0o077 == 0
}

// tryLock takes the line's head if no one has it; it keeps it if it has.
func (f lineFile) tryLock() bool {
	for {
		err := unix.Flock(f.fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// close leaves the line (and its head, if held).
func (f lineFile) close() { unix.Close(f.fd) }
