package locktest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// chaosRecorder records what chaosCheck reports.
type chaosRecorder struct{ errs, logs []string }

func (r *chaosRecorder) Helper() {}
func (r *chaosRecorder) Errorf(f string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(f, args...))
}
func (r *chaosRecorder) Fatalf(f string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(f, args...))
}
func (r *chaosRecorder) Logf(f string, args ...any) { r.logs = append(r.logs, fmt.Sprintf(f, args...)) }

// TestChaosCheck feeds the chaos test's checker logs with known faults:
// each must be reported, and a clean log must pass.
func TestChaosCheck(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) int64 { return base.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	b1 := &chaosWorker{host: "hb", pid: 5}
	kill := &chaosEvent{at: base.Add(250 * time.Millisecond), targeted: true, victims: []*chaosWorker{b1}}
	killed := map[string]time.Time{b1.id(): kill.at}

	// A clean run: a1, b1, b1 killed while holding (after its rename),
	// b2 breaks its lock and goes on, a1 again.
	clean := []string{
		fmt.Sprintf("begin 1 ha 11 %d 0", at(0)),
		fmt.Sprintf("end 1 ha 11 %d %d 1", at(0), at(10)),
		fmt.Sprintf("begin 2 hb 5 %d 1", at(200)),
		fmt.Sprintf("break 2 hb 5 hb 6 %d no process with pid 5", at(280)),
		fmt.Sprintf("begin 3 hb 6 %d 2", at(290)),
		fmt.Sprintf("end 3 hb 6 %d %d 3", at(290), at(300)),
		fmt.Sprintf("begin 4 ha 11 %d 3", at(400)),
		fmt.Sprintf("end 4 ha 11 %d %d 4", at(400), at(410)),
	}
	check := func(lines []string, counter uint64) *chaosRecorder {
		r := &chaosRecorder{}
		chaosCheck(r, lines, []*chaosEvent{kill}, killed, counter, "ha", "hb", time.Second, time.Second)
		return r
	}
	if r := check(clean, 4); len(r.errs) > 0 {
		t.Fatalf("clean log: %q", r.errs)
	}
	// b1 may also have died before its rename: then b2 reads 1.
	before := append([]string(nil), clean...)
	before[4] = fmt.Sprintf("begin 3 hb 6 %d 1", at(290))
	before[5] = fmt.Sprintf("end 3 hb 6 %d %d 2", at(290), at(300))
	before[6] = fmt.Sprintf("begin 4 ha 11 %d 2", at(400))
	before[7] = fmt.Sprintf("end 4 ha 11 %d %d 3", at(400), at(410))
	if r := check(before, 3); len(r.errs) > 0 {
		t.Fatalf("clean log (kill before the rename): %q", r.errs)
	}

	for _, tc := range []struct {
		name    string
		edit    func(l []string) []string
		counter uint64
		want    string
	}{
		{"overlap", func(l []string) []string {
			l[6] = fmt.Sprintf("begin 4 ha 11 %d 3", at(295))
			l[7] = fmt.Sprintf("end 4 ha 11 %d %d 4", at(295), at(410))
			return l
		}, 4, "overlap"},
		{"lost update", func(l []string) []string {
			l[6] = fmt.Sprintf("begin 4 ha 11 %d 2", at(400))
			l[7] = fmt.Sprintf("end 4 ha 11 %d %d 3", at(400), at(410))
			return l
		}, 3, "lost or repeated"},
		{"token back", func(l []string) []string {
			l[6] = fmt.Sprintf("begin 1 ha 11 %d 3", at(400))
			l[7] = fmt.Sprintf("end 1 ha 11 %d %d 4", at(400), at(410))
			return l
		}, 4, "tokens must increase"},
		{"counter", func(l []string) []string { return l }, 7, "counter is 7"},
		{"taken before the kill", func(l []string) []string {
			l[3] = fmt.Sprintf("break 2 hb 5 hb 6 %d no process with pid 5", at(240))
			l[4] = fmt.Sprintf("begin 3 hb 6 %d 2", at(245))
			return l
		}, 4, "before"},
		{"live holder broken", func(l []string) []string {
			return append(l[:8:8], fmt.Sprintf("break 4 ha 11 hb 6 %d heartbeat unchanged", at(420)))
		}, 4, "never killed"},
		{"hold of a live worker without end", func(l []string) []string {
			return append(l[:1:1], l[2:]...)
		}, 4, "never killed"},
		{"no break of the dead holder's lock", func(l []string) []string {
			return append(l[:3:3], l[4:]...)
		}, 4, "no one logged breaking"},
		{"torn line", func(l []string) []string {
			l[5] = l[5][:20]
			return l
		}, 4, "malformed"},
		{"no progress after the kill", func(l []string) []string { return l[:3] }, 2, "no completed hold after"},
		{"begin logged inside another hold", func(l []string) []string {
			// The clocks do not overlap, but a4 logged its begin before a1's
			// end: both held at once.
			l[0], l[1] = fmt.Sprintf("begin 1 ha 12 %d 0", at(0)), fmt.Sprintf("begin 2 ha 11 %d 0", at(11))
			l = append(l[:2], append([]string{fmt.Sprintf("end 1 ha 12 %d %d 1", at(0), at(10))}, l[2:]...)...)
			l[3] = fmt.Sprintf("end 2 ha 11 %d %d 1", at(11), at(12))
			l[4] = fmt.Sprintf("begin 3 hb 5 %d 1", at(200))
			return l
		}, 4, "inside"},
		{"break while another holds", func(l []string) []string {
			l = append(l[:7:7], fmt.Sprintf("break 2 hb 5 hb 6 %d no process with pid 5", at(405)), l[7])
			return l
		}, 4, "while"},
	} {
		lines := tc.edit(append([]string(nil), clean...))
		r := check(lines, tc.counter)
		found := false
		for _, e := range r.errs {
			found = found || strings.Contains(e, tc.want)
		}
		if !found {
			t.Errorf("%s: want a problem saying %q; got %q", tc.name, tc.want, r.errs)
		}
	}
}

// TestChaosCheckShared feeds chaosCheck logs of shared and exclusive holds
// with known faults: each must be reported, and a clean log (shared holds
// overlapping) must pass.
func TestChaosCheckShared(t *testing.T) {
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
		chaosCheck(r, lines, nil, map[string]time.Time{}, counter, "ha", "hb", time.Second, time.Second)
		return r
	}
	if r := check(clean, 2); len(r.errs) > 0 {
		t.Fatalf("clean log: %q", r.errs)
	}
	for _, tc := range []struct {
		name    string
		edit    func([]string) []string
		counter uint64
		want    string
	}{
		{"exclusive overlaps shared", func(l []string) []string {
			l[6] = fmt.Sprintf("begin 4 hb 6 %d 1", at(44))
			l[7] = fmt.Sprintf("end 4 hb 6 %d %d 2", at(44), at(60))
			return l
		}, 2, "overlaps"},
		{"exclusive logged inside a shared hold", func(l []string) []string {
			l[5], l[6] = l[6], l[5]
			l[6] = fmt.Sprintf("end 3 hb 5 %d %d 1 shared", at(25), at(45))
			return []string{l[0], l[1], l[2], l[3], l[4], fmt.Sprintf("begin 4 hb 6 %d 1", at(50)), l[6], l[7]}
		}, 2, "inside"},
		{"counter changed under reader", func(l []string) []string {
			l[4] = fmt.Sprintf("end 2 ha 12 %d %d 2 shared", at(20), at(40))
			return l
		}, 2, "changed under a shared hold"},
		{"token not increasing", func(l []string) []string {
			l[6] = fmt.Sprintf("begin 3 hb 6 %d 1", at(50))
			l[7] = fmt.Sprintf("end 3 hb 6 %d %d 2", at(50), at(60))
			return l
		}, 2, "tokens must increase"},
		{"lost update", func(l []string) []string { return l }, 3, "counter is 3"},
		{"hold never ended", func(l []string) []string { return l[:7] }, 2, "never killed"},
	} {
		lines := tc.edit(append([]string(nil), clean...))
		r := check(lines, tc.counter)
		found := false
		for _, e := range r.errs {
			found = found || strings.Contains(e, tc.want)
		}
		if !found {
			t.Errorf("%s: want a problem saying %q; got %q", tc.name, tc.want, r.errs)
		} else {
			t.Logf("%s: %q", tc.name, r.errs)
		}
	}
}
