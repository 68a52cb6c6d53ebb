package stale_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// fakeTable is a ProcessTable from a map; errs makes lookups fail.
type fakeTable struct {
	procs   map[int]stale.Process
	errs    map[int]error
	lookups []int
}

func (f *fakeTable) Lookup(pid int) (stale.Process, error) {
	f.lookups = append(f.lookups, pid)
	if err := f.errs[pid]; err != nil {
		return stale.Process{Exists: true}, err
	}
	return f.procs[pid], nil // zero Process: no such PID
}

var localID = stale.Identity{Host: "here", BootID: "boot-aaaaaaaaaaaa", PIDNS: "pid:[4026531836]"}

func TestJudge(t *testing.T) {
	table := &fakeTable{
		procs: map[int]stale.Process{
			100: {Exists: true, StartID: "5000"},
			101: {Exists: true, Zombie: true, StartID: "5001"},
			102: {Exists: true, StartID: "9999"}, // reused: the record says 5002
			103: {Exists: true, StartID: ""},     // start unknown to the table
			104: {Exists: true, StartID: "5004"},
			105: {Exists: true, Zombie: true}, // zombie whose start is unknown
		},
		errs: map[int]error{
			200: errors.New("permission denied"),
		},
	}
	c := &stale.Checker{Local: localID, Processes: table}
	rec := func(pid int, startID string) stale.Owner {
		o := sampleOwner()
		o.Host, o.BootID, o.PIDNS = localID.Host, localID.BootID, localID.PIDNS
		o.PID, o.StartID = pid, startID
		return o
	}
	with := func(o stale.Owner, f func(*stale.Owner)) stale.Owner { f(&o); return o }

	cases := []struct {
		name    string
		o       stale.Owner
		verdict stale.Verdict
		reason  []string // each must be in the reason
		lookup  bool     // the process table must (not) be asked
	}{
		{"other host", with(rec(100, "5000"), func(o *stale.Owner) { o.Host = "there" }), stale.Remote, []string{"another host", "there"}, false},
		{"other host, dead-looking pid", with(rec(999, "1"), func(o *stale.Owner) { o.Host, o.BootID = "there", "x" }), stale.Remote, []string{"another host"}, false},
		{"same host, other boot", with(rec(100, "5000"), func(o *stale.Owner) { o.BootID = "boot-bbbbbbbbbbbb" }), stale.Dead, []string{"reboot"}, false},
		{"same host, other boot, other pidns", with(rec(100, "5000"), func(o *stale.Owner) { o.BootID, o.PIDNS = "boot-b", "pid:[1]" }), stale.Dead, []string{"reboot"}, false},
		{"same host and boot, other pidns", with(rec(999, "5000"), func(o *stale.Owner) { o.PIDNS = "pid:[4026532000]" }), stale.Remote, []string{"PID namespace", "pid:[4026532000]"}, false},
		{"same host and boot, pidns unknown in record", with(rec(100, "5000"), func(o *stale.Owner) { o.PIDNS = "" }), stale.Remote, []string{"PID namespace"}, false},
		{"no such pid", rec(999, "5000"), stale.Dead, []string{"no process", "999"}, true},
		{"zombie", rec(101, "5001"), stale.Dead, []string{"zombie", "101"}, true},
		{"zombie, start unknown", rec(105, ""), stale.Dead, []string{"zombie"}, true},
		{"start differs", rec(102, "5002"), stale.Dead, []string{"reuse", "102"}, true},
		{"start equal", rec(100, "5000"), stale.Alive, []string{"running", "100"}, true},
		{"lookup error", rec(200, "5000"), stale.Alive, []string{"permission denied", "200"}, true},
		{"empty start in record", rec(100, ""), stale.Alive, []string{"running"}, true},
		{"empty start in table", rec(103, "5003"), stale.Alive, []string{"running"}, true},
		{"empty start in both", rec(103, ""), stale.Alive, []string{"running"}, true},
		{"empty start in record, no such pid", rec(998, ""), stale.Dead, []string{"no process"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table.lookups = nil
			j := c.Judge(tc.o)
			if j.Verdict != tc.verdict {
				t.Errorf("Judge(%v) = %v (%s), want %v", tc.o, j.Verdict, j.Reason, tc.verdict)
			}
			for _, s := range tc.reason {
				if !strings.Contains(j.Reason, s) {
					t.Errorf("reason %q does not mention %q", j.Reason, s)
				}
			}
			if asked := len(table.lookups) > 0; asked != tc.lookup {
				t.Errorf("process table asked: %v (lookups %v), want %v", asked, table.lookups, tc.lookup)
			}
			if tc.lookup && len(table.lookups) > 0 && table.lookups[0] != tc.o.PID {
				t.Errorf("looked up pid %v, want %d", table.lookups, tc.o.PID)
			}
		})
	}
}

// TestJudgeNeverDeadOnError: whatever the lookup error, and whatever else
// the table says alongside it, an error never makes a holder dead.
func TestJudgeNeverDeadOnError(t *testing.T) {
	for _, p := range []stale.Process{{}, {Exists: true, Zombie: true}, {Exists: true, StartID: "other"}} {
		c := &stale.Checker{Local: localID, Processes: errTable{p}}
		o := sampleOwner()
		o.Host, o.BootID, o.PIDNS = localID.Host, localID.BootID, localID.PIDNS
		if j := c.Judge(o); j.Verdict != stale.Alive {
			t.Errorf("lookup error with %+v: Judge = %v (%s), want alive", p, j.Verdict, j.Reason)
		}
	}
}

type errTable struct{ p stale.Process }

func (e errTable) Lookup(int) (stale.Process, error) { return e.p, fmt.Errorf("lookup failed") }

// TestJudgeOwnRecord: a record this checker's host wrote through Marshal is
// judged local, even when the host name holds characters Marshal replaces.
func TestJudgeOwnRecord(t *testing.T) {
	for _, host := range []string{"here", "odd\x01host", "tab\thost"} {
		local := stale.Identity{Host: host, BootID: "boot\r1", PIDNS: "pid:[1]"}
		table := &fakeTable{procs: map[int]stale.Process{77: {Exists: true, StartID: "s"}}}
		c := &stale.Checker{Local: local, Processes: table}
		o := sampleOwner()
		o.Host, o.BootID, o.PIDNS, o.PID, o.StartID = local.Host, local.BootID, local.PIDNS, 77, "s"
		parsed := mustParse(t, o.Marshal())
		if j := c.Judge(parsed); j.Verdict != stale.Alive {
			t.Errorf("host %q: own record judged %v (%s), want alive", host, j.Verdict, j.Reason)
		}
		parsed.PID = 78
		if j := c.Judge(parsed); j.Verdict != stale.Dead {
			t.Errorf("host %q: own record of a gone pid judged %v (%s), want dead", host, j.Verdict, j.Reason)
		}
	}
}

func TestOf(t *testing.T) {
	o := sampleOwner()
	want := stale.Identity{Host: o.Host, BootID: o.BootID, PIDNS: o.PIDNS}
	if got := stale.Of(o); got != want {
		t.Errorf("Of = %+v, want %+v", got, want)
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[stale.Verdict]string{stale.Alive: "alive", stale.Dead: "dead", stale.Remote: "remote", 7: "Verdict(7)"} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", int(v), got, want)
		}
	}
}

func TestObservation(t *testing.T) {
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var ob stale.Observation
	steps := []struct {
		key  string
		now  time.Duration
		want time.Duration
	}{
		{"a", 0, 0},                                  // first sight
		{"a", time.Second, time.Second},              // same key: grows
		{"a", 5 * time.Second, 5 * time.Second},      // still measured from first sight
		{"a", 5*time.Second + 1, 5*time.Second + 1},  // nanosecond resolution
		{"b", 6 * time.Second, 0},                    // changed key restarts
		{"b", 9 * time.Second, 3 * time.Second},      //
		{"a", 10 * time.Second, 0},                   // back to an earlier key: still a change
		{"a", 40 * time.Second, 30 * time.Second},    //
		{"", 41 * time.Second, 0},                    // the empty key is a key like any other
		{"", 43 * time.Second, 2 * time.Second},      //
		{"a", 44 * time.Second, 0},                   //
		{"a", 44*time.Second + time.Hour, time.Hour}, //
		{"a\x00", 45*time.Second + time.Hour, 0},     // keys compare exactly
		{"a\x00", 46*time.Second + time.Hour, time.Second},
	}
	for i, s := range steps {
		if got := ob.See(s.key, at(s.now)); got != s.want {
			t.Fatalf("step %d: See(%q, t0+%v) = %v, want %v", i, s.key, s.now, got, s.want)
		}
	}

	ob.Reset()
	if got := ob.See("a\x00", at(50*time.Hour)); got != 0 {
		t.Errorf("See after Reset = %v, want 0 (first sight)", got)
	}
	if got := ob.See("a\x00", at(51*time.Hour)); got != time.Hour {
		t.Errorf("See after Reset and an hour = %v, want 1h", got)
	}

	// The zero Observation's first sight of the empty key is a first sight.
	var fresh stale.Observation
	if got := fresh.See("", at(time.Hour)); got != 0 {
		t.Errorf("zero Observation: See(\"\") = %v, want 0", got)
	}
	if got := fresh.See("", at(2*time.Hour)); got != time.Hour {
		t.Errorf("zero Observation: second See(\"\") = %v, want 1h", got)
	}
}
