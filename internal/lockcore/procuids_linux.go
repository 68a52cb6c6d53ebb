package lockcore

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// procUIDs are the real, effective, saved and filesystem uids of process
// pid, from /proc/PID/status.
func procUIDs(pid int) ([]int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			var uids []int
			for _, f := range strings.Fields(rest) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return nil, err
				}
				uids = append(uids, n)
			}
			return uids, nil
		}
	}
	return nil, errors.New("no Uid line")
}
