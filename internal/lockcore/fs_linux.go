package lockcore

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// networkFS reports whether dir is on a filesystem shared with other hosts,
// where a record must be synced before other hosts can be sure to see it.
func networkFS(dir string) bool {
	network, known := fsKind(dir)
	return network || !known // unknown: sync, to be safe
}

// fsKind tells whether dir is on a network filesystem; known is false if
// statfs fails (dir is gone, say).
func fsKind(dir string) (network, known bool) {
	class, known := fsClassOf(dir)
	return class != classLocal, known
}

// fsClass sorts filesystems by what their clients' caches do.
type fsClass uint8

const (
	classLocal   fsClass = iota
	classNetwork         // shared with other hosts
	classSMB             // and SMB: see noDeferredClose
	classFUSE            // and FUSE (sshfs): see dirHandles
)

func fsClassOf(dir string) (fsClass, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return classLocal, false
	}
	switch uint32(st.Type) {
	case unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC:
		return classSMB, true
	case unix.FUSE_SUPER_MAGIC:
		return classFUSE, true
	case unix.NFS_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC, unix.AFS_SUPER_MAGIC,
		unix.CODA_SUPER_MAGIC, unix.OCFS2_SUPER_MAGIC, 0x01161970 /* GFS2 */, 0x47504653 /* GPFS */, 0x0BD00BD0 /* Lustre */ :
		return classNetwork, true
	}
	return classLocal, true
}

// noDeferredClose keeps the Linux SMB client from deferring the close of
// fd, a record opened for reading in dir. cifs keeps a closed file's handle
// (and its lease) for up to closetimeo (1 s by default), and hands it to
// the next open of the same path with the same flags: after another host
// replaced the file by rename, that open reads the old file. Measured on
// SMB 3.1.1 between two VMs: P.last read with its old token, and the same
// token issued on both hosts. A byte-range lock request on the file makes
// cifs close it for real (it never defers the close of a file that was
// locked, and any byte-range lock request, even to unlock a byte never
// locked, marks the file so). The request is an unlock of one byte far
// beyond any record: it holds nothing, so it cannot stand in the way of a
// write (SMB's byte-range locks are mandatory: a read lock on byte 0 made
// the holder's own record write fail with EACCES). Best effort: on a mount with nobrl the
// request stays local and the close is deferred again (mount with
// closetimeo=0 there).
func noDeferredClose(fd int, dir string) {
	if !keepsHandles(dir) {
		return
	}
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 1 << 62, Len: 1}
	_ = unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
}

// keepsHandles reports whether dir's filesystem client may hand an open
// of a name a file it kept open after its close (SMB: noDeferredClose),
// which another host may since have replaced there.
func keepsHandles(dir string) bool { return fsClassFor(dir) == classSMB }

var (
	networkDirs    sync.Map // directory -> fsClass
	networkDirsLen atomic.Int64
)

// directFlag is O_DIRECT for records in a directory on a network
// filesystem. sshfs with its default caches kept a record's old content in
// the page cache across its replacement by another host's record of the
// same size (every record is padded to one size) and the same whole-second
// mtime, so that a breaker read a dead holder's bytes where a live
// holder's stood. Direct reads go to the server.
func directFlag(dir string) int {
	if fsClassFor(dir) != classLocal {
		return unix.O_DIRECT
	}
	return 0
}

// fsClassFor is fsClassOf, cached per directory; classLocal if dir is gone.
func fsClassFor(dir string) fsClass {
	v, ok := networkDirs.Load(dir)
	if !ok {
		class, known := fsClassOf(dir)
		if !known {
			// Not cached: a lock directory comes and goes, and O_DIRECT
			// on a local filesystem fails reads into unaligned buffers
			// with EINVAL. If dir is gone, so is the record.
			return classLocal
		}
		v = class
		if networkDirsLen.Add(1) > 4096 { // lock directories come and go: stay bounded
			networkDirs.Clear()
			networkDirsLen.Store(1)
		}
		networkDirs.Store(dir, v)
	}
	return v.(fsClass)
}

// slotFlag is the open flag only last-record slot reads use (readSlot).
const slotFlag = unix.O_DSYNC

// oPath is O_PATH (pathOnlyDirs).
const oPath = unix.O_PATH

// pathOnlyDirs reports whether the protocol's directories in dir's
// filesystem are opened O_PATH (openLockDir): where opening one asks the
// server for nothing that looking it up does not. Not on NFS, whose client
// revalidates a directory that is opened (close-to-open) and with it what
// it has cached of the names inside: the records read there stay fresh.
// Nor on SMB or other network filesystems (measured: no request less).
func pathOnlyDirs(dir string) bool {
	c := fsClassFor(dir)
	return c == classLocal || c == classFUSE
}

// dirHandles reports whether calls in dir are better made through one
// descriptor of it (opDir) than by name: where every lookup of it
// is a request to the server (FUSE; sshfs mounted for sharing looks each
// name up again). An NFS or SMB client keeps a looked-up directory for a
// while, and a local lookup costs no request.
func dirHandles(dir string) bool { return fsClassFor(dir) == classFUSE }

// localFS reports whether dir is on a local filesystem, where an inode's
// identity at a path can be trusted (no attribute cache stands between).
func localFS(dir string) bool { return directFlag(dir) == 0 }

// knownNetworkFS reports whether dir is known to be on a network
// filesystem, whose client's caches may show for a moment what no one
// wrote (see notRecordYet).
func knownNetworkFS(dir string) bool { return !localFS(dir) }

// touchNow sets the times of name, an empty regular file, to now (the
// server's, on NFS): a long waiter's mark on P.want (W7). Through a
// descriptor opened without following a symlink, and only if what it
// opened is dotlock's kind of P.want: a directory, FIFO or non-empty file
// planted there is a stranger's, and is left as it is.
func touchNow(name string) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
		return unix.EEXIST
	}
	return unix.UtimesNanoAt(fd, "", nil, unix.AT_EMPTY_PATH)
}
