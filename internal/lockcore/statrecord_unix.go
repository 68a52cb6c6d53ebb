//go:build unix && !linux

package lockcore

import "golang.org/x/sys/unix"

// fstatRecord is fstat of fd, a record just opened (see the Linux one).
func fstatRecord(fd int, st *unix.Stat_t, _ bool) error { return unix.Fstat(fd, st) }

// serverSize is fstat's size of the file open at fd (see the Linux one).
func serverSize(fd int) (int64, bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0, false
	}
	return st.Size, true
}
