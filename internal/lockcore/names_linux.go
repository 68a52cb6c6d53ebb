package lockcore

import "golang.org/x/sys/unix"

// nameMax is the longest name, in bytes, that the filesystem holding dir
// takes (statfs's f_namelen, which glibc's pathconf(_PC_NAME_MAX) reports).
func nameMax(dir string) int {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Namelen > 0 {
		return int(st.Namelen)
	}
	return 255
}
