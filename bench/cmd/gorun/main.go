// Command gorun runs its arguments as a command and exits with its status:
// the least a command-line wrapper written in Go does (start the runtime,
// fork and exec the command through os/exec, wait for it). bench's section
// 5 measures it beside dotlock, as the floor of any Go command that runs
// another: what dotlock costs beyond it is the lock's.
package main

import (
	"errors"
	"os"
	"os/exec"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(64)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.ExitCode())
	case err != nil:
		os.Exit(69)
	}
}
