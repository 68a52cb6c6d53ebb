package stale

// SystemProcesses is the host's real process table: on Linux read from
// /proc/PID/stat (an exact start time, and zombies), elsewhere through
// gopsutil.
type SystemProcesses struct{}

// Lookup implements ProcessTable.
func (SystemProcesses) Lookup(pid int) (Process, error) {
	if pid <= 0 || pid > 1<<31-1 {
		return Process{}, nil
	}
	if p, ok, err := lookupProc(pid); ok {
		return p, err
	}
	return lookupFallback(pid)
}
