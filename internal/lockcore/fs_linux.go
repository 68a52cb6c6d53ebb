package lockcore

import "golang.org/x/sys/unix"

// networkFS reports whether dir is on a filesystem shared with other hosts,
// where a record must be synced before other hosts can be sure to see it.
func networkFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return true
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC, unix.AFS_SUPER_MAGIC,
		unix.CODA_SUPER_MAGIC, unix.OCFS2_SUPER_MAGIC, 0x01161970 /* GFS2 */, 0x47504653 /* GPFS */, 0x0BD00BD0 /* Lustre */ :
		return true
	}
	return false
}
