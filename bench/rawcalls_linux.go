//go:build linux

package bench

import (
	"errors"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// The system calls dotlock's lock file and lock directory make for one
// uncontended lock+unlock on a local filesystem (an strace of each), made
// bare: no record formatted, no token parsed, no UUID, no heartbeat
// timer, every call's result but the create's ignored. Beside the floors
// they show what the protocol's steps cost on that filesystem, and beside
// dotlock what its own work around them costs. (On a network filesystem
// dotlock fsyncs its record, checks records by their bytes where these
// look at inodes, and releases with one rename: these are measured on
// local filesystems only.)

func init() {
	Peers["raw-lockfile-calls"] = Peer{Name: "raw-lockfile-calls", Polling: true, LocalOnly: true,
		About: "dotlock-lockfile's system calls on a local filesystem, bare: W4 lstat P.want; A1 create; A3 open, fstat, read, close P.last and open P.last.1; A4 pwrite; A5 lstat P.break; A6 fstat the entry, lstat P; R1 lstat P, close; R2 lstat P.last, unlink it, rename P onto it",
		New: func(p string, s Settings) (Locker, error) {
			return &rawCalls{names: namesOf(p), poll: pollOr(s, time.Millisecond)}, nil
		}}
	Peers["raw-lockdir-calls"] = Peer{Name: "raw-lockdir-calls", Polling: true, LocalOnly: true,
		About: "dotlock-lockdir's system calls on a local filesystem, bare: lstat P.queue; A1 mkdir, open P (O_PATH), create owner in it, close P; A3 as lockfile's; A4 pwrite; A5 lstat P.break; A6 fstat the entry, lstat P/owner; R1 lstat P/owner, close; R2 open P (O_PATH), lstat P.last, unlink it, rename owner onto it, rmdir P, close P; lstat P.queue",
		New: func(p string, s Settings) (Locker, error) {
			return &rawCalls{names: namesOf(p), poll: pollOr(s, time.Millisecond), dir: true}, nil
		}}
	i := slices.Index(Uncontended, "raw-mkdir") + 1
	Uncontended = slices.Insert(Uncontended, i, "raw-lockfile-calls", "raw-lockdir-calls")
}

type rawNames struct{ p, owner, last, last1, brk, want, queue string }

func namesOf(p string) rawNames {
	return rawNames{p, p + "/owner", p + ".last", p + ".last.1", p + ".break", p + ".want", p + ".queue"}
}

type rawCalls struct {
	names rawNames
	poll  time.Duration
	dir   bool
	fd    int
	buf   [1025]byte
	st    unix.Stat_t
}

const (
	rawCreate = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	rawRead   = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_CLOEXEC
	rawDir    = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_PATH | unix.O_DIRECTORY
)

func (r *rawCalls) Lock() error {
	n := &r.names
	for {
		if r.dir {
			unix.Lstat(n.queue, &r.st)
		} else {
			unix.Lstat(n.want, &r.st)
		}
		fd, err := r.create()
		if errors.Is(err, unix.EEXIST) {
			time.Sleep(r.poll)
			continue
		}
		if err != nil {
			return &os.PathError{Op: "create", Path: n.p, Err: err}
		}
		if lfd, err := unix.Open(n.last, rawRead, 0); err == nil {
			unix.Fstat(lfd, &r.st)
			unix.Read(lfd, r.buf[:])
			unix.Close(lfd)
		}
		if lfd, err := unix.Open(n.last1, rawRead, 0); err == nil {
			unix.Close(lfd)
		}
		unix.Pwrite(fd, Record, 0)
		unix.Lstat(n.brk, &r.st)
		unix.Fstat(fd, &r.st)
		if r.dir {
			unix.Lstat(n.owner, &r.st)
		} else {
			unix.Lstat(n.p, &r.st)
		}
		r.fd = fd
		return nil
	}
}

// create is A1: the entry, or the directory and its owner file.
func (r *rawCalls) create() (int, error) {
	n := &r.names
	if !r.dir {
		return unix.Open(n.p, rawCreate, 0o644)
	}
	if err := unix.Mkdir(n.p, 0o755); err != nil {
		return -1, err
	}
	dfd, err := unix.Open(n.p, rawDir, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	return unix.Openat(dfd, "owner", rawCreate, 0o644)
}

func (r *rawCalls) Unlock() error {
	n := &r.names
	if !r.dir {
		unix.Lstat(n.p, &r.st)
		unix.Close(r.fd)
		unix.Lstat(n.last, &r.st)
		unix.Unlink(n.last)
		return unix.Rename(n.p, n.last)
	}
	unix.Lstat(n.owner, &r.st)
	unix.Close(r.fd)
	dfd, err := unix.Open(n.p, rawDir, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	unix.Lstat(n.last, &r.st)
	unix.Unlink(n.last)
	if err := unix.Renameat(dfd, "owner", unix.AT_FDCWD, n.last); err != nil {
		return err
	}
	err = unix.Rmdir(n.p)
	unix.Lstat(n.queue, &r.st)
	return err
}
