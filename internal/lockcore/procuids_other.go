//go:build !linux

package lockcore

import "errors"

// procUIDs is Linux-only (/proc/PID/status); elsewhere no record is judged
// by its file's owner.
func procUIDs(int) ([]int, error) { return nil, errors.New("not supported") }
