//go:build !linux

package main

import "github.com/shirou/gopsutil/v3/process"

// parentOf is process pid's parent.
func parentOf(pid int) (int, bool) {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return 0, false
	}
	pp, err := p.Ppid()
	return int(pp), err == nil
}
