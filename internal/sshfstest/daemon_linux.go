package sshfstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// daemon is a background process owned by a Cluster (sshd, sshfs, host B's
// namespace init). It runs in its own process group, which is killed as a
// whole, and receives SIGKILL if the test process dies first.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string // file receiving its stdout and stderr
	done chan struct{}
	err  error // valid after done is closed
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to timeout for the daemon to exit by itself.
func (d *daemon) waitExit(timeout time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill sends SIGKILL to the daemon's process group and waits for the daemon
// to exit. It reports an error if it does not exit in time.
func (d *daemon) kill() error {
	if !d.exited() {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	if !d.waitExit(exitTimeout) {
		return fmt.Errorf("%s (pid %d) did not exit within %v after SIGKILL", d.name, d.cmd.Process.Pid, exitTimeout)
	}
	return nil
}

// logTail returns the last part of the daemon's output.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 8 << 10
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	return s
}

func (d *daemon) status() string {
	if d.exited() {
		return fmt.Sprintf("exited: %v", d.err)
	}
	return "running"
}
