// Command jobqueue coordinates workers — processes, on one host or on many
// sharing a directory over NFS — through per-job dotlock locks, and shows
// that a crashed worker's job is redone and no job is done twice.
//
// Run with no flags, it makes a spool of jobs in a temporary directory,
// starts several worker processes (itself, re-executed), kills one with
// SIGKILL in the middle of a job, and prints a summary:
//
//	go run ./examples/jobqueue
//
// On several hosts, point every worker at one shared spool:
//
//	jobqueue -spool /mnt/nfs/spool -init -jobs 500   # once, to fill the spool
//	jobqueue -spool /mnt/nfs/spool -worker           # on each host
//
// Each worker claims a job with TryLock on spool/locks/JOB.lock, skips jobs
// that are done (marked in the job file, read under the lock: see doJob),
// and writes the result with its hold's fencing token: a
// result is refused if the job's result already carries a newer token, so
// a worker that lost its lock (paused past its lease) cannot overwrite the
// work of the worker that took over.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockfile"
)

var (
	spool      = flag.String("spool", "", "spool directory (default: a new temporary directory)")
	jobs       = flag.Int("jobs", 300, "number of jobs to create")
	workers    = flag.Int("workers", 4, "number of worker processes to start")
	workerOnly = flag.Bool("worker", false, "run as a worker on -spool and exit when no job is left")
	initOnly   = flag.Bool("init", false, "only create the jobs in -spool")
	kill       = flag.Bool("kill", true, "SIGKILL one worker in the middle of a job")
	staleAfter = flag.Duration("stale-after", 10*time.Second, "lease for workers on other hosts")
	work       = flag.Duration("work", 5*time.Millisecond, "time one job takes")
)

func main() {
	flag.Parse()
	var err error
	switch {
	case *workerOnly:
		err = worker(*spool)
	case *initOnly:
		err = createJobs(*spool, *jobs)
	default:
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobqueue:", err)
		os.Exit(1)
	}
}

func createJobs(dir string, n int) error {
	if dir == "" {
		return errors.New("-spool is required")
	}
	for _, sub := range []string{"jobs", "locks", "results"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for i := range n {
		name := filepath.Join(dir, "jobs", fmt.Sprintf("job-%05d", i))
		if err := os.WriteFile(name, []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// worker claims and does jobs until none is left undone.
func worker(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "jobs"))
	if err != nil {
		return err
	}
	for pass := 0; ; pass++ {
		pending := 0
		for _, e := range entries {
			done, err := doJob(dir, e.Name())
			if err != nil {
				return err
			}
			if !done {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // jobs held by others: come back for them
	}
}

// doJob does job name unless it is done or claimed; it reports whether the
// job is done (by anyone).
func doJob(dir, name string) (bool, error) {
	result := filepath.Join(dir, "results", name)
	if _, err := os.Stat(result); err == nil {
		return true, nil
	}
	l, err := lockfile.New(filepath.Join(dir, "locks", name+".lock"), dotlock.WithStaleAfter(*staleAfter))
	if err != nil {
		return false, err
	}
	if err := l.TryLock(); err != nil {
		if errors.Is(err, dotlock.ErrLocked) {
			return false, nil
		}
		return false, err
	}
	defer l.Unlock()
	// Under the lock, whether the job is done is read from the job file
	// itself, not from whether the result exists: on NFS and SMB a client
	// may answer "no such file" from its cache for a file another host
	// created seconds ago (stat and open alike), while opening a file
	// that exists fetches its current content (close-to-open). Measured
	// across two VMs with default mounts: jobs done twice on NFS v4.2 and
	// SMB when this check was os.Stat(result).
	job := filepath.Join(dir, "jobs", name)
	input, err := os.ReadFile(job)
	if err != nil {
		return false, err
	}
	if strings.Contains(string(input), "\ndone ") {
		return true, nil // done while we were claiming it
	}
	fmt.Printf("start %s %d\n", name, l.Token())
	time.Sleep(*work) // the work itself
	n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(input), "\n", 2)[0]))
	if err := writeFenced(result, l.Token(), fmt.Sprintf("%d squared is %d, by pid %d\n", n, n*n, os.Getpid())); err != nil {
		return false, err
	}
	if err := markDone(job, l.Token()); err != nil {
		return false, err
	}
	fmt.Printf("done %s %d\n", name, l.Token())
	return true, nil
}

// markDone appends "done TOKEN" to the job file, synced before the lock is
// released: the next holder, on any host, reads it.
func markDone(job string, token uint64) error {
	f, err := os.OpenFile(job, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "done %d\n", token); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFenced writes a result unless one with a newer token is there. The
// caller holds the job's lock, so the check and the write do not race with
// another holder — except one that lost its lease, which the token stops.
func writeFenced(path string, token uint64, body string) error {
	if old, err := os.ReadFile(path); err == nil {
		var t uint64
		fmt.Sscanf(string(old), "token %d", &t)
		if t >= token {
			return fmt.Errorf("%s: refused a write with token %d: the result has token %d", path, token, t)
		}
	}
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("token %d\n%s", token, body)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type event struct {
	worker int
	kind   string // start or done
	job    string
	token  uint64
	at     time.Time
}

// run is the demonstration: a spool, workers, a crash, a summary.
func run() error {
	dir := *spool
	if dir == "" {
		d, err := os.MkdirTemp("", "jobqueue-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := createJobs(dir, *jobs); err != nil {
		return err
	}
	fmt.Printf("spool %s: %d jobs, %d worker processes\n", dir, *jobs, *workers)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	events := make(chan event, 1024)
	var wg sync.WaitGroup
	cmds := make([]*exec.Cmd, *workers)
	victim := len(cmds) - 1
	for i := range cmds {
		w := *work
		if *kill && i == victim {
			// The victim's jobs take longer, so that the kill, sent when
			// its "start" line is read, lands in the middle of one even on
			// a slow machine, not after it.
			w *= 40
		}
		cmd := exec.Command(self, "-worker", "-spool", dir, "-work", w.String(), "-stale-after", staleAfter.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds[i] = cmd
		wg.Add(1)
		go func(i int, r io.Reader) {
			defer wg.Done()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 {
					t, _ := strconv.ParseUint(f[2], 10, 64)
					events <- event{worker: i, kind: f[0], job: f[1], token: t, at: time.Now()}
				}
			}
		}(i, out)
	}
	go func() { wg.Wait(); close(events) }()

	var (
		killed      = -1
		killedJob   string
		killedAt    time.Time
		reclaimedIn time.Duration
		starts      = map[string]int{}
		dones       = map[string]int{}
		lastShown   time.Time
	)
	for ev := range events {
		switch ev.kind {
		case "start":
			starts[ev.job]++
			if *kill && killed < 0 && ev.worker == victim && len(dones) >= *jobs/4 {
				// Kill it now, while it holds the lock of the job it just began.
				cmds[victim].Process.Signal(syscall.SIGKILL)
				killed, killedJob, killedAt = victim, ev.job, time.Now()
			} else if ev.job == killedJob && ev.worker != killed && reclaimedIn == 0 {
				reclaimedIn = ev.at.Sub(killedAt)
			}
		case "done":
			// Counted whoever printed it, and whenever it arrives: a
			// worker prints "done" only after writing the result, so a
			// line from the victim read after the kill was written before.
			dones[ev.job]++
		}
		if time.Since(lastShown) > 200*time.Millisecond {
			lastShown = time.Now()
			fmt.Fprintf(os.Stderr, "  %d/%d jobs done\n", len(dones), *jobs)
		}
	}
	for i, cmd := range cmds {
		err := cmd.Wait()
		if i != killed && err != nil {
			return fmt.Errorf("worker %d: %v", i, err)
		}
	}

	results, err := os.ReadDir(filepath.Join(dir, "results"))
	if err != nil {
		return err
	}
	dup, redone := 0, 0
	var dupJobs []string
	for job, n := range dones {
		if n > 1 {
			dup += n - 1
			dupJobs = append(dupJobs, job)
		}
	}
	for job, n := range starts {
		if n > 1 && job == killedJob {
			redone++
		}
	}
	sort.Strings(dupJobs)
	fmt.Printf("\njobs done:        %d of %d (result files: %d)\n", len(dones), *jobs, len(results))
	if killed >= 0 {
		fmt.Printf("worker killed:    worker %d, SIGKILL in the middle of %s\n", killed, killedJob)
		fmt.Printf("redone after it:  %d job(s); another worker took its lock %v after the kill\n", redone, reclaimedIn.Round(time.Microsecond))
	}
	fmt.Printf("done twice:       %d %v\n", dup, dupJobs)
	// Every job has its result, and none was done twice. (A worker killed
	// between writing a result and saying so leaves one "done" unsaid.)
	if len(results) != *jobs || len(dones) < *jobs-1 || dup != 0 {
		return fmt.Errorf("FAILED: every job must be done exactly once")
	}
	fmt.Println("ok: every job done exactly once")
	return nil
}
