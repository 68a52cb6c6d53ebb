package vmtest

import (
	"os/exec"
	"syscall"
)

// dieWithTest has the kernel kill QEMU if the test process dies first
// (go test's -timeout panic skips t.Cleanup): no guest outlives its test.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
