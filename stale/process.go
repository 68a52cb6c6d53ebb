package stale

import (
	"strconv"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// SystemProcesses is the host's real process table, read through gopsutil
// (and, on Linux, /proc/PID/stat for an exact start time and zombie state).
type SystemProcesses struct{}

// Lookup implements ProcessTable.
func (SystemProcesses) Lookup(pid int) (Process, error) {
	if pid <= 0 || pid > 1<<31-1 {
		return Process{}, nil
	}
	if p, ok, err := lookupProc(pid); ok {
		return p, err
	}
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
