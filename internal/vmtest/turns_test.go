package vmtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// turnsFor is how long the processes of a turns run contend: the length
// of the measurement, not a wait for something to happen.
const turnsFor = 30 * time.Second

// testTurns: two processes on A and two on B take turns at one lock file,
// each hold a counter's (read, add one, write back), for turnsFor. A
// release wakes the waiters of its own host at once and another host's
// only when they probe, so without turns across hosts (W7) the lock goes
// round one host's processes: the check is that each host gets a quarter
// of the holds at least (half would be fair), and that no update is lost.
func testTurns(t *testing.T, c *Cluster) {
	var wg sync.WaitGroup
	for _, m := range Mounts {
		if !turnsOn(m) || !only(m.Name+"/turns") {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			turnsRun(t, c, m)
		}()
	}
	wg.Wait()
}

// turnsOn reports whether the turns run is made on m: the NFS mounts with
// default options. Not on SMB: there a mark carries the marking client's
// clock, which W7 compares with the times the server gave (the VMs'
// clocks drift apart under emulation), and the share of holds per host
// ranged from 4% to 70% whether or not W7 was in; and with leases, one
// waiter's open(2) of the lock's files waited for the server's answer
// (kernel stack: SMB2_open, wait_for_response) for minutes in 2 of 9 runs,
// before W7 existed and after, so the run could not end.
func turnsOn(m Mount) bool {
	return m.Default && m.Type == "nfs"
}

func turnsRun(t *testing.T, c *Cluster, m Mount) {
	dir := m.Path + "/turns-" + m.Name
	counter, stop := dir+"/counter", dir+"/stop"
	if _, errOut, exit, err := c.Run(A, time.Minute, "sh", "-c", "mkdir "+dir+" && echo 0 >"+counter); err != nil || exit != 0 {
		t.Errorf("%s: creating the counter: exit %d, %v %s", m.Name, exit, err, errOut)
		return
	}
	args := []string{SharePath + "/vmlock", "counter", "-kind", "file", "-lock", dir + "/lock", "-counter", counter, "-n", "1000000", "-release", stop, "-wait", "90s"}
	hosts := []string{A, A, B, B}
	procs := make([]*Proc, len(hosts))
	for i, h := range hosts {
		p, err := c.Spawn(h, args...)
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			return
		}
		procs[i] = p
	}
	time.Sleep(turnsFor)
	// Made on each host, so that neither looks for it past a cached
	// "no such file".
	for _, h := range []string{A, B} {
		if _, errOut, exit, err := c.Run(h, time.Minute, "touch", stop); err != nil || exit != 0 {
			t.Errorf("%s: touch %s on %s: exit %d, %v %s", m.Name, stop, h, exit, err, errOut)
		}
	}
	seen := map[uint64]string{}
	byValue := map[int]uint64{}
	holds := make([]int, len(procs))
	outs := make([]string, len(procs))
	perHost := map[string]int{}
	total := 0
	for i, p := range procs {
		// A waiter gives up after vmlock's -wait; one still there later is
		// stuck: its goroutines (SIGQUIT) and kernel stacks tell where.
		done := func() bool { _, err := os.Stat(p.base + ".rc"); return err == nil }
		if p.c.poll(p.Host, time.Now().Add(150*time.Second), done) != nil {
			if pid, err := p.PID(); err == nil {
				out, _, _, _ := c.Run(p.Host, time.Minute, "sh", "-c", fmt.Sprintf("for t in /proc/%d/task/*; do echo \"== $t $(cat $t/wchan)\"; cat $t/stack; done", pid))
				t.Logf("%s: process %d on %s still there, its threads' kernel stacks:\n%s", m.Name, i, hosts[i], out)
			}
			p.Signal("QUIT")
		}
		out, errOut, exit, err := p.Wait(time.Minute)
		if err != nil || exit != 0 {
			t.Errorf("%s: process %d on %s: exit %d, %v\n%s%s", m.Name, i, hosts[i], exit, err, lastLines(out, 3), errOut)
		}
		outs[i] = out
		n, bad := checkTokens(seen, byValue, hosts[i], out)
		if bad != "" {
			t.Errorf("%s: process %d on %s: %s", m.Name, i, hosts[i], bad)
		}
		holds[i] = n
		perHost[hosts[i]] += n
		total += n
	}
	if bad := checkOrder(byValue); bad != "" {
		t.Errorf("%s: %s", m.Name, bad)
	}
	if t.Failed() {
		t.Logf("%s: the lock's files now, from A:\n%s", m.Name, lockState(c, dir))
		for i, out := range outs {
			t.Logf("%s: process %d on %s:\n%s", m.Name, i, hosts[i], out)
		}
	}
	out, _, _, err := c.Run(A, time.Minute, "cat", counter)
	if got, perr := strconv.Atoi(strings.TrimSpace(out)); err != nil || perr != nil || got != total {
		t.Errorf("%s: counter %q after %d holds: updates lost", m.Name, strings.TrimSpace(out), total)
	}
	measured.addTurns(m.Name, holds)
	t.Logf("%s: holds per process %v (A: %d, B: %d) in %v", m.Name, holds, perHost[A], perHost[B], turnsFor)
	if total == 0 {
		t.Errorf("%s: no holds at all", m.Name)
		return
	}
	if share := float64(min(perHost[A], perHost[B])) / float64(total); share < 0.25 {
		t.Errorf("%s: one host had %.0f%% of %d holds (A %d, B %d): want a quarter at least (W7: a long waiter on the other host goes first)", m.Name, 100*share, total, perHost[A], perHost[B])
	}
}

// turnsCell is a report cell for a turns run's holds per process.
func turnsCell(holds []int) string {
	if len(holds) == 0 {
		return ""
	}
	lo, hi, strs := holds[0], holds[0], make([]string, len(holds))
	for i, h := range holds {
		lo, hi, strs[i] = min(lo, h), max(hi, h), strconv.Itoa(h)
	}
	if hi == 0 {
		return strings.Join(strs, " ")
	}
	return fmt.Sprintf("%s (fairness %.2f)", strings.Join(strs, " "), float64(lo)/float64(hi))
}
