package main

import "golang.org/x/sys/unix"

// exitNotice is closed when process pid exits (pidfd_open, Linux 5.3), so
// that a keeper releases at once, not at its next look; nil where the
// kernel cannot tell.
func exitNotice(pid int) <-chan struct{} {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	c := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		close(c)
	}()
	return c
}
