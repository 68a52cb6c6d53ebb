package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// parentOf is process pid's parent, from /proc/PID/stat (gopsutil's
// process package is not linked on Linux: its start-up cost every
// command about 0.2 ms).
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command, which is in parentheses and may hold
	// anything: the state, then the parent.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}
