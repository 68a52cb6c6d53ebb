package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// jobsPerRun is the number of jobs in each mount's spool.
const jobsPerRun = 30

// testJobQueue runs examples/jobqueue's workers on A and B at once on one
// spool per default mount: every job must be done exactly once.
func testJobQueue(t *testing.T, c *Cluster) {
	bin := filepath.Join(c.Share, "jobqueue")
	cmd := exec.Command("go", "build", "-o", bin, "../../examples/jobqueue")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building jobqueue: %v\n%s", err, out)
	}
	var wg sync.WaitGroup
	for _, m := range Mounts {
		if m.Default {
			wg.Add(1)
			go func() {
				defer wg.Done()
				jobQueueRun(t, c, m)
			}()
		}
	}
	wg.Wait()
}

func jobQueueRun(t *testing.T, c *Cluster, m Mount) {
	spool := m.Path + "/jobqueue-" + m.Name
	jq := SharePath + "/jobqueue"
	c.Sh(t, A, time.Minute, fmt.Sprintf("%s -spool %s -init -jobs %d", jq, spool, jobsPerRun))
	begin := time.Now()
	var procs []*Proc
	for _, h := range []string{A, B} {
		p, err := c.Spawn(h, jq, "-spool", spool, "-worker", "-stale-after", lease.String(), "-work", "20ms")
		must(t, err)
		procs = append(procs, p)
	}
	doneBy := map[string][]string{} // job: hosts that did it
	for i, p := range procs {
		out, errOut, exit, err := p.Wait(5 * time.Minute)
		if err != nil || exit != 0 {
			t.Errorf("%s: worker on %s: exit %d, %v\n%s", m.Name, p.Host, exit, err, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			var job string
			var tok uint64
			if n, _ := fmt.Sscanf(line, "done %s %d", &job, &tok); n == 2 {
				doneBy[job] = append(doneBy[job], []string{A, B}[i])
			}
		}
	}
	perHost := map[string]int{}
	for i := range jobsPerRun {
		job := fmt.Sprintf("job-%05d", i)
		switch by := doneBy[job]; len(by) {
		case 1:
			perHost[by[0]]++
		case 0:
			t.Errorf("%s: %s never done", m.Name, job)
		default:
			t.Errorf("%s: %s done %d times (on %v)", m.Name, job, len(by), by)
		}
	}
	t.Logf("%s: %d jobs, done by A %d, by B %d, in %v", m.Name, jobsPerRun, perHost[A], perHost[B], time.Since(begin).Round(100*time.Millisecond))
}
