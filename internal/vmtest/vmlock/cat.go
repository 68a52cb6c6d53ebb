//go:build linux

package main

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// cat copies file to stdout; with nodefer, it first asks to unlock a byte
// of it far beyond its data, as dotlock does on SMB (see the package doc). An open that fails with EINVAL (the SMB
// client's answer for a name another host replaced, while it holds the old
// file) is tried again, as dotlock does, for up to 5 s.
func cat(file string, nodefer bool) {
	f, err := os.Open(file)
	for end := time.Now().Add(5 * time.Second); errors.Is(err, unix.EINVAL) && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		f, err = os.Open(file)
	}
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	if nodefer {
		lk := unix.Flock_t{Type: unix.F_UNLCK, Start: 1 << 62, Len: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			fail("fcntl %s: %v", file, err)
		}
	}
	if _, err := io.Copy(os.Stdout, f); err != nil {
		fail("%v", err)
	}
}
