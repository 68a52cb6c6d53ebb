//go:build !unix

package main

import "errors"

func mkfifo(path string) error {
	return errors.New("this example runs a POSIX shell script, with a named pipe: it needs a Unix system")
}

func unblock(path string) {}
