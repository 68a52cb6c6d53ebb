//go:build !unix

package locktest

import (
	"errors"
	"os"
)

// There is no SIGSTOP here: the stopped-holder test is skipped.
const procCanStop = false

var errProcNoStop = errors.New("stopping a process is not supported on this system")

var errNoProcState = errors.New("no process states on this system")

func procKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// Stop would stop the helper; this system cannot.
func (h *Helper) Stop() error { return errProcNoStop }

// Cont would resume a stopped helper; this system cannot.
func (h *Helper) Cont() error { return errProcNoStop }

func procState(pid int) (byte, error) { return 0, errNoProcState }
