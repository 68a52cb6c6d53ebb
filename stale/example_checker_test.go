package stale_test

import (
	"fmt"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// processes is a process table with two processes, for a deterministic
// example; stale.SystemProcesses{} is the real one.
type processes map[int]stale.Process

func (p processes) Lookup(pid int) (stale.Process, error) { return p[pid], nil }

// A Checker judges each record by where it was written: on this host by the
// process table (PID gone, or reused by a process with another start time:
// dead), elsewhere by its lease (remote).
func ExampleChecker_Judge() {
	here := stale.Identity{Host: "build-7", BootID: "boot-1", PIDNS: "pid:[4026531836]"}
	c := &stale.Checker{
		Local: here,
		Processes: processes{
			100: {Exists: true, StartID: "5000"},
			200: {Exists: true, StartID: "9999"}, // PID 200 now runs another program
		},
	}
	record := func(pid int, startID string, edit func(*stale.Owner)) stale.Owner {
		o := stale.Owner{PID: pid, StartID: startID, Host: here.Host, BootID: here.BootID, PIDNS: here.PIDNS}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	for _, o := range []stale.Owner{
		record(100, "5000", nil),
		record(300, "7000", nil),
		record(200, "6000", nil),
		record(100, "5000", func(o *stale.Owner) { o.BootID = "boot-0" }),
		record(100, "5000", func(o *stale.Owner) { o.Host = "build-8" }),
	} {
		j := c.Judge(o)
		fmt.Printf("%-6s %s\n", j.Verdict, j.Reason)
	}
	// Output:
	// alive  pid 100 is running
	// dead   no process with pid 300
	// dead   pid 200 was reused (started 9999, record says 6000)
	// dead   host build-7 rebooted since (boot boot-0, now boot-1)
	// remote held on another host (build-8)
}

// An Observation measures how long a remote holder's record has stood still,
// by the observer's own clock: a changed heartbeat starts the count again.
func ExampleObservation_See() {
	var ob stale.Observation
	t0 := time.Now()
	fmt.Println(ob.See("heartbeat 1", t0))
	fmt.Println(ob.See("heartbeat 1", t0.Add(10*time.Second)))
	fmt.Println(ob.See("heartbeat 2", t0.Add(12*time.Second)))
	fmt.Println(ob.See("heartbeat 2", t0.Add(45*time.Second)))
	// Output:
	// 0s
	// 10s
	// 0s
	// 33s
}
