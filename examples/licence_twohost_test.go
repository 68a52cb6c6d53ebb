//go:build linux

package examples_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/sshfstest"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/semaphore"
)

// The licence example across two hosts sharing an sshfs mount: 6 workers
// on each, 3 slots; a worker on host B is SIGKILLed while it holds a slot.
// The limit holds, every other worker finishes, and the killed worker's
// slot is taken again with a greater token (by host B's workers at once,
// its PID being dead there; by host A's after the lease).
func TestLicenceTwoHosts(t *testing.T) {
	c := sshfstest.Start(t, sshfstest.Options{})
	bin := filepath.Join(testdir.New(t), "licence")
	if out, err := goCommand(t, moduleRoot(t), "build", "-o", bin, "./examples/licence").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const perHost = 6
	type run struct {
		cmd  *exec.Cmd
		host string
	}
	var runs []run
	for i := range 2 * perHost {
		host, mount, command := "a", c.MountA, c.CommandA
		if i%2 == 1 {
			host, mount, command = "b", c.MountB, c.CommandB
		}
		cmd := command(bin, "-worker", "-dir", filepath.Join(mount, "licence"), "-id", host+strconv.Itoa(i),
			"-slots", "3", "-jobs", "4", "-work", "30ms", "-stale-after", "2s")
		cmd.Stderr = os.Stderr
		runs = append(runs, run{cmd, host})
	}
	victim := runs[1] // on host B
	out, err := victim.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var killedSlot, killedToken int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// At its second job, while it holds the slot.
			if strings.Contains(sc.Text(), "(job 1)") {
				fmt.Sscanf(sc.Text(), "holding slot %d token %d", &killedSlot, &killedToken)
				pid, err := sshfstest.HostPID(victim.cmd)
				if err == nil {
					err = syscall.Kill(pid, syscall.SIGKILL)
				}
				if err != nil {
					t.Errorf("killing the worker on host B: %v", err)
				}
			}
		}
	}()
	wg.Wait()
	for i, r := range runs {
		err := r.cmd.Wait()
		if r.cmd == victim.cmd {
			if err == nil {
				t.Errorf("the worker to be killed finished")
			}
			continue
		}
		if err != nil {
			t.Errorf("worker %d on host %s: %v", i, r.host, err)
		}
	}
	rep, err := exec.Command(bin, "-report", "-dir", filepath.Join(c.Export, "licence"), "-slots", "3").CombinedOutput()
	t.Logf("report:\n%s", rep)
	if err != nil || !strings.Contains(string(rep), "ok: never more than 3 jobs at once") {
		t.Fatalf("report: %v", err)
	}
	if !strings.Contains(string(rep), fmt.Sprintf("jobs done:        %d", 2*perHost*4-3)) {
		t.Errorf("not every job done but the killed worker's last 3")
	}
	logs, err := os.ReadDir(filepath.Join(c.Export, "licence", "log"))
	if err != nil {
		t.Fatal(err)
	}
	later := false
	for _, l := range logs {
		data, _ := os.ReadFile(filepath.Join(c.Export, "licence", "log", l.Name()))
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var in, outT int64
			var slot, tok int
			fmt.Sscan(line, &in, &outT, &slot, &tok)
			later = later || (slot == killedSlot && tok > killedToken)
		}
	}
	if !later {
		// Under load the other workers may all have finished before one of
		// them tried the killed worker's slot (host B's break it at once,
		// host A's after its lease): then take the slots here, on host A's
		// side, until the killed worker's comes, after its lease.
		t.Logf("no worker took slot %d again; taking the slots from host A", killedSlot)
		later = retaken(t, filepath.Join(c.Export, "licence", "sem"), killedSlot, killedToken)
	}
	if !later {
		t.Errorf("slot %d, held by the killed worker with token %d, was never taken again", killedSlot, killedToken)
	}
}

// retaken acquires the slots of the semaphore in dir (3 slots, a 2 s
// lease, as the workers') until it holds slot, and reports whether that
// hold's token is greater than token.
func retaken(t *testing.T, dir string, slot, token int) bool {
	sem, err := semaphore.New(dir, 3, dotlock.WithStaleAfter(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		s, err := sem.Acquire(ctx)
		if err != nil {
			t.Fatalf("acquiring the slots from host A: %v", err)
		}
		defer s.Release()
		if s.Index() == slot {
			t.Logf("slot %d taken again from host A with token %d", slot, s.Token())
			return s.Token() > uint64(token)
		}
	}
	return false
}
