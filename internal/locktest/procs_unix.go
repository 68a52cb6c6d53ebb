//go:build unix

package locktest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

const procCanStop = true

func procKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// Stop stops the helper with SIGSTOP.
func (h *Helper) Stop() error { return syscall.Kill(h.PID(), syscall.SIGSTOP) }

// Cont resumes a stopped helper with SIGCONT.
func (h *Helper) Cont() error { return syscall.Kill(h.PID(), syscall.SIGCONT) }

var errNoProcState = errors.New("no /proc/PID/stat on this system")

// procState returns the state letter of process pid from /proc/PID/stat
// ('T' when stopped, 'S' or 'R' when running).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return 0, errNoProcState
		}
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) == 0 || len(f[0]) != 1 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f[0][0], nil
}
