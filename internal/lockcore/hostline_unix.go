//go:build unix

package lockcore

import (
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// lineFile is a host line's local file, open; its flock is the head.
type lineFile struct {
	fd   int
	bell string // a name beside it whose creation wakes the line's followers (W8)
}

// openHostLine opens (making it if need be) the line file name in this
// user's private directory of lines, $TMPDIR/dotlock-lines-UID, which
// must be a real directory this user owns and no one else may enter, on a
// local filesystem: in a directory others may write, a planted file could
// hold the head for ever (and followers would look only once a heartbeat
// period).
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
	if !privateTo(dfd, uid, unix.S_IFDIR) || !localFS(dir) {
		// A network filesystem's flock may go to its server's lock
		// manager (NFS: NLM), or stay local to each client: either way
		// not a line of this host's waiters.
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
	return lineFile{fd: fd, bell: filepath.Join(dir, name+".bell")}, true
}

// ring wakes the followers that watch the line's bell (W8): a file made
// and removed at once in the private directory of lines.
func (f lineFile) ring() {
	fd, err := unix.Open(f.bell, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err == nil {
		unix.Close(fd)
	}
	unix.Unlink(f.bell)
}

// bellPath is the name whose changes ring the bell.
func (f lineFile) bellPath() string { return f.bell }

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

// tryLock takes the line's head if no one has it, and keeps it if it
// has. Any answer but "taken" or "held by another" (ENOLCK, say) is
// taken for the head: a waiter that cannot tell must not wait for a head
// that may never be.
func (f lineFile) tryLock() bool {
	for {
		switch err := unix.Flock(f.fd, unix.LOCK_EX|unix.LOCK_NB); err {
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
			return false
		default:
			return true
		}
	}
}

// close leaves the line (and its head, if held).
func (f lineFile) close() { unix.Close(f.fd) }
