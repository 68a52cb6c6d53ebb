//go:build !linux

package stale

import "github.com/shirou/gopsutil/v3/host"

// bootTimeID stands in for a boot ID where the OS has none.
func bootTimeID() (string, error) {
	bt, err := host.BootTime()
	if err != nil {
		return "", err
	}
	return bootTimeIDOf(bt), nil
}
