//go:build unix && !linux

package lockcore

import "golang.org/x/sys/unix"

// fstatRecord is fstat of fd, a record just opened (see the Linux one).
func fstatRecord(fd int, st *unix.Stat_t, _ bool) error { return unix.Fstat(fd, st) }
