//go:build !linux

package stale

import (
	"strconv"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// lookupFallback asks gopsutil whether process pid exists, and when it
// started.
func lookupFallback(pid int) (Process, error) {
	exists, err := process.PidExists(int32(pid))
	if err != nil || !exists {
		return Process{Exists: exists}, err
	}
	p := Process{Exists: true}
	if proc, err := process.NewProcess(int32(pid)); err == nil {
		if ms, err := proc.CreateTime(); err == nil {
			p.Started = time.UnixMilli(ms)
			p.StartID = strconv.FormatInt(ms, 10)
		}
	}
	return p, nil
}
