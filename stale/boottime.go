package stale

import (
	"strconv"
	"syscall"

	"github.com/shirou/gopsutil/v3/host"
)

var errSRCH error = syscall.ESRCH

// bootTimeID stands in for a boot ID where the OS has none. gopsutil's boot
// time is whole seconds; rounded to a minute it stays stable while the clock
// is corrected.
func bootTimeID() (string, error) {
	bt, err := host.BootTime()
	if err != nil {
		return "", err
	}
	return "boottime:" + strconv.FormatUint(bt/60*60, 10), nil
}
