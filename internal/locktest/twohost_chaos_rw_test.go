package locktest

import (
	"fmt"
	"testing"
	"time"
)

// TestChaosCheckRW feeds chaosCheckRW logs with known faults: each must be
// reported, and a clean log (shared holds overlapping) must pass.
func TestChaosCheckRW(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) int64 { return base.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	clean := []string{
		fmt.Sprintf("begin 1 ha 11 %d 0", at(0)),
		fmt.Sprintf("end 1 ha 11 %d %d 1", at(0), at(10)),
		fmt.Sprintf("begin 2 ha 12 %d 1 shared", at(20)),
		fmt.Sprintf("begin 3 hb 5 %d 1 shared", at(25)),
		fmt.Sprintf("end 2 ha 12 %d %d 1 shared", at(20), at(40)),
		fmt.Sprintf("end 3 hb 5 %d %d 1 shared", at(25), at(45)),
		fmt.Sprintf("begin 4 hb 6 %d 1", at(50)),
		fmt.Sprintf("end 4 hb 6 %d %d 2", at(50), at(60)),
	}
	check := func(lines []string, counter uint64) *chaosRecorder {
		r := &chaosRecorder{}
		chaosCheckRW(r, lines, nil, map[string]time.Time{}, counter, "ha", "hb", time.Second, time.Second)
		return r
	}
	if r := check(clean, 2); len(r.errs) > 0 {
		t.Fatalf("clean log: %q", r.errs)
	}
	bad := map[string]func([]string) ([]string, uint64){
		"exclusive overlaps shared": func(l []string) ([]string, uint64) {
			l[6] = fmt.Sprintf("begin 4 hb 6 %d 1", at(44))
			l[7] = fmt.Sprintf("end 4 hb 6 %d %d 2", at(44), at(60))
			return l, 2
		},
		"counter changed under reader": func(l []string) ([]string, uint64) {
			l[4] = fmt.Sprintf("end 2 ha 12 %d %d 2 shared", at(20), at(40))
			return l, 2
		},
		"token not increasing": func(l []string) ([]string, uint64) {
			l[6] = fmt.Sprintf("begin 3 hb 6 %d 1", at(50))
			l[7] = fmt.Sprintf("end 3 hb 6 %d %d 2", at(50), at(60))
			return l, 2
		},
		"lost update": func(l []string) ([]string, uint64) { return l, 3 },
		"hold never ended": func(l []string) ([]string, uint64) {
			return l[:7], 2
		},
	}
	for name, f := range bad {
		lines, counter := f(append([]string(nil), clean...))
		if r := check(lines, counter); len(r.errs) == 0 {
			t.Errorf("%s: not reported", name)
		} else {
			t.Logf("%s: %q", name, r.errs)
		}
	}
}
