//go:build linux

package locktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dotlock/dotlock/stale"
)

// zombie starts a child that exits at once and is not reaped until the
// test ends, and returns its PID and start ID once it is a zombie.
func zombie(t *testing.T) (int, string) {
	t.Helper()
	path, err := exec.LookPath("true")
	if err != nil {
		t.Skipf("no true command to run as a child process: %v", err)
	}
	cmd := exec.Command(path)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a child: %v", err)
	}
	t.Cleanup(func() { cmd.Wait() })
	pid := cmd.Process.Pid
	// Wait for the exit without reaping it (WNOWAIT): the child stays a zombie.
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("waitid on child %d: %v", pid, err)
		}
		break
	}
	p, err := (stale.SystemProcesses{}).Lookup(pid)
	if err != nil || !p.Exists || !p.Zombie || p.StartID == "" {
		t.Fatalf("process table on exited, unreaped child %d: %+v, %v; want a zombie", pid, p, err)
	}
	return pid, p.StartID
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// setImmutable sets or clears the immutable attribute of the file at path
// (chattr +i / -i): such a file cannot be renamed or removed, even by root.
func setImmutable(path string, on bool) error {
	const immutable = 0x10 // FS_IMMUTABLE_FL
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("get attributes of %s: %w", path, err)
	}
	if on {
		flags |= immutable
	} else {
		flags &^= immutable
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags); err != nil {
		return fmt.Errorf("set attributes of %s: %w", path, err)
	}
	return nil
}
