package stale

import (
	"testing"

	"github.com/shirou/gopsutil/v3/host"
)

// bootTime reads /proc/stat's btime itself; gopsutil's answer (from the
// same line, or from /proc/uptime in a container) must agree with it to
// within its rounding.
func TestBootTimeAgreesWithGopsutil(t *testing.T) {
	got, err := bootTime()
	if err != nil {
		t.Fatal(err)
	}
	want, err := host.BootTime()
	if err != nil {
		t.Skipf("gopsutil has no boot time here: %v", err)
	}
	if d := int64(got) - int64(want); d < -2 || d > 2 {
		t.Errorf("bootTime() = %d, gopsutil's host.BootTime() = %d", got, want)
	}
}
