//go:build !unix

package main

import (
	"errors"
	"os"
)

var errNoStop = errors.New("this example pauses a process with SIGSTOP, which this system does not have")

func pause(p *os.Process) error { return errNoStop }

func resume(p *os.Process) error { return errNoStop }
