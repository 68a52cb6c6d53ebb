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
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, false
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC, unix.AFS_SUPER_MAGIC,
		unix.CODA_SUPER_MAGIC, unix.OCFS2_SUPER_MAGIC, 0x01161970 /* GFS2 */, 0x47504653 /* GPFS */, 0x0BD00BD0 /* Lustre */ :
		return true, true
	}
	return false, true
}

var (
	networkDirs    sync.Map // directory -> bool: on a network filesystem
	networkDirsLen atomic.Int64
)

// directFlag is O_DIRECT for records in a directory on a network
// filesystem. sshfs with its default caches kept a record's old content in
// the page cache across its replacement by another host's record of the
// same size (every record is padded to one size) and the same whole-second
// mtime, so that a breaker read a dead holder's bytes where a live
// holder's stood. Direct reads go to the server.
func directFlag(dir string) int {
	v, ok := networkDirs.Load(dir)
	if !ok {
		network, known := fsKind(dir)
		if !known {
			// Not cached: a lock directory comes and goes, and O_DIRECT
			// on a local filesystem fails reads into unaligned buffers
			// with EINVAL. If dir is gone, so is the record.
			return 0
		}
		v = network
		if networkDirsLen.Add(1) > 4096 { // lock directories come and go: stay bounded
			networkDirs.Clear()
			networkDirsLen.Store(1)
		}
		networkDirs.Store(dir, v)
	}
	if v.(bool) {
		return unix.O_DIRECT
	}
	return 0
}

// slotFlag is the open flag only last-record slot reads use (readSlot).
const slotFlag = unix.O_DSYNC

// localFS reports whether dir is on a local filesystem, where an inode's
// identity at a path can be trusted (no attribute cache stands between).
func localFS(dir string) bool { return directFlag(dir) == 0 }

// knownNetworkFS reports whether dir is known to be on a network
// filesystem, whose client's caches may show for a moment what no one
// wrote (see notRecordYet).
func knownNetworkFS(dir string) bool { return !localFS(dir) }
