//go:build unix

package lockdir_test

import (
	"os"
	"syscall"
)

// rwCanStop: helpers can be stopped (SIGSTOP) and continued.
const rwCanStop = true

func (p *rwProc) stop() { p.signal(syscall.SIGSTOP) }
func (p *rwProc) cont() { p.signal(syscall.SIGCONT) }

// resume continues the helper if it was stopped, so that a kill ends it.
func (p *rwProc) resume() { p.cmd.Process.Signal(syscall.SIGCONT) }

func (p *rwProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// appendLine appends line to the O_APPEND log f in one write, which POSIX
// makes atomic among the processes appending.
func appendLine(f *os.File, line string) error {
	_, err := f.WriteString(line)
	return err
}
