//go:build !linux

package locktest

import (
	"errors"
	"testing"
)

func zombie(t *testing.T) (int, string) {
	t.Skip("zombie children are set up with waitid(WNOWAIT), Linux only")
	return 0, ""
}

func mkfifo(path string) error { return errors.ErrUnsupported }

func setImmutable(path string, on bool) error { return errors.ErrUnsupported }
