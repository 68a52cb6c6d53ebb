// Command licence limits how many jobs run at once — across processes, and
// across hosts sharing a directory over NFS — with a dotlock semaphore:
// "at most 3 jobs talk to the licence server at a time". It shows that the
// limit is never exceeded, that a worker killed while it holds a slot does
// not keep it, and that the workers get close to the limit's worth of
// work done.
//
// Run with no flags, it makes a semaphore of 3 slots in a temporary
// directory, starts 12 worker processes (itself, re-executed), kills one
// with SIGKILL while it holds a slot, and prints a summary:
//
//	go run ./examples/licence
//
// On several hosts, point every worker at one shared directory, then
// report:
//
//	licence -worker -dir /mnt/nfs/licence -id a1   # as many as you like, on each host
//	licence -report -dir /mnt/nfs/licence
//
// The semaphore is DIR/sem (a semaphore's directory holds only its own
// entries). Each worker appends what it did to DIR/log/ID: when it entered and left
// a slot (by its host's clock: across hosts, the peak computed from these
// needs their clocks in step, as NTP keeps them).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/semaphore"
)

var (
	dir        = flag.String("dir", "", "the work directory, holding the semaphore (sem) and the logs (log) (default: a new temporary directory)")
	slots      = flag.Int("slots", 3, "how many jobs may run at once")
	workers    = flag.Int("workers", 12, "number of worker processes to start")
	jobs       = flag.Int("jobs", 4, "jobs each worker runs")
	work       = flag.Duration("work", 40*time.Millisecond, "time one job takes")
	staleAfter = flag.Duration("stale-after", 10*time.Second, "lease for workers on other hosts")
	workerOnly = flag.Bool("worker", false, "run as a worker on -dir")
	id         = flag.String("id", "", "the worker's name (with -worker)")
	reportOnly = flag.Bool("report", false, "only report on the logs in -dir")
	kill       = flag.Bool("kill", true, "SIGKILL one worker while it holds a slot")
)

func main() {
	flag.Parse()
	var err error
	switch {
	case *workerOnly:
		err = worker()
	case *reportOnly:
		err = report(*dir, *slots, 0, kill1{})
	default:
		err = demo()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "licence:", err)
		os.Exit(1)
	}
}

// worker runs its jobs, each holding a slot, and logs them.
func worker() error {
	if *id == "" || *dir == "" {
		return errors.New("-worker needs -dir and -id")
	}
	if err := os.MkdirAll(filepath.Join(*dir, "log"), 0o777); err != nil {
		return err
	}
	sem, err := semaphore.New(filepath.Join(*dir, "sem"), *slots, dotlock.WithStaleAfter(*staleAfter))
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(*dir, "log", *id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	defer log.Close()
	for j := range *jobs {
		slot, err := sem.Acquire(context.Background())
		if err != nil {
			return err
		}
		in := time.Now()
		fmt.Printf("holding slot %d token %d (job %d)\n", slot.Index(), slot.Token(), j) // the demo kills on this line
		time.Sleep(*work)                                                                // the job
		out := time.Now()
		if err := slot.Release(); err != nil {
			return err
		}
		// Written after the release: a worker killed in the job leaves no
		// interval, only its slot, to be reclaimed.
		fmt.Fprintf(log, "%d %d %d %d\n", in.UnixNano(), out.UnixNano(), slot.Index(), slot.Token())
	}
	return nil
}

// demo runs the workers on this host, kills one in a job, and reports.
func demo() error {
	d := *dir
	if d == "" {
		tmp, err := os.MkdirTemp("", "licence")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		d = filepath.Join(tmp, "licence")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	var cmds []*exec.Cmd
	killed := make(chan kill1, 1)
	for i := range *workers {
		cmd := exec.Command(self, "-worker", "-dir", d, "-id", "w"+strconv.Itoa(i),
			"-slots", strconv.Itoa(*slots), "-jobs", strconv.Itoa(*jobs), "-work", work.String(), "-stale-after", staleAfter.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
		go watch(cmd, bufio.NewScanner(out), i == 0 && *kill, killed)
	}
	failed := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil && !(i == 0 && *kill) {
			fmt.Fprintf(os.Stderr, "worker w%d: %v\n", i, err)
			failed++
		}
	}
	var k kill1
	if *kill {
		if k = <-killed; k.at.IsZero() {
			return errors.New("worker w0 ended before it could be killed in a job")
		}
		fmt.Printf("worker killed:    w0, in a job, holding slot %d (token %d)\n", k.slot, k.token)
	}
	if failed > 0 {
		return fmt.Errorf("%d workers failed", failed)
	}
	return report(d, *slots, time.Since(start), k)
}

// kill1 is the demo's kill: when, and the slot held then.
type kill1 struct {
	at    time.Time
	slot  int
	token uint64
}

// watch reads a worker's output; if kill, it SIGKILLs the worker at its
// second job, while it holds the slot.
func watch(cmd *exec.Cmd, out *bufio.Scanner, kill bool, killed chan<- kill1) {
	n := 0
	for out.Scan() {
		if n++; kill && n == 2 {
			cmd.Process.Kill()
			k := kill1{at: time.Now()}
			fmt.Sscanf(out.Text(), "holding slot %d token %d", &k.slot, &k.token)
			killed <- k
			return
		}
	}
	if kill {
		killed <- kill1{} // it ended before its second job
	}
}

type hold struct {
	in, out time.Time
	slot    int
	token   uint64
}

// report reads the logs and prints the peak, the reclaim of a killed
// worker's slot, and the throughput; it fails if the peak is over the limit.
func report(d string, limit int, wall time.Duration, k kill1) error {
	holds, err := readLogs(filepath.Join(d, "log"))
	if err != nil {
		return err
	}
	if len(holds) == 0 {
		return errors.New("no holds logged")
	}
	peak, busy := overlap(holds)
	fmt.Printf("jobs done:        %d\n", len(holds))
	fmt.Printf("peak at once:     %d (limit %d)\n", peak, limit)
	if !k.at.IsZero() {
		h, ok := reclaimed(holds, k)
		if !ok {
			return fmt.Errorf("the killed worker's slot %d was never taken again", k.slot)
		}
		fmt.Printf("reclaimed:        slot %d, taken again %v after the kill, with token %d\n", k.slot, h.in.Sub(k.at).Round(time.Millisecond), h.token)
	}
	if wall > 0 {
		fmt.Printf("throughput:       %.1f jobs at once on average (limit %d)\n", float64(busy)/float64(wall), limit)
	}
	if peak > limit {
		return fmt.Errorf("%d jobs ran at once, over the limit of %d", peak, limit)
	}
	fmt.Printf("ok: never more than %d jobs at once\n", limit)
	return nil
}

func readLogs(logDir string) ([]hold, error) {
	names, err := os.ReadDir(logDir)
	if err != nil {
		return nil, err
	}
	var holds []hold
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(logDir, n.Name()))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var in, out int64
			var h hold
			if _, err := fmt.Sscan(line, &in, &out, &h.slot, &h.token); err != nil {
				return nil, fmt.Errorf("%s: %q: %v", n.Name(), line, err)
			}
			h.in, h.out = time.Unix(0, in), time.Unix(0, out)
			holds = append(holds, h)
		}
	}
	return holds, nil
}

// overlap returns the most holds at once and the total time held.
func overlap(holds []hold) (peak int, busy time.Duration) {
	type event struct {
		at time.Time
		d  int
	}
	var ev []event
	for _, h := range holds {
		ev = append(ev, event{h.in, 1}, event{h.out, -1})
		busy += h.out.Sub(h.in)
	}
	// A hold that ends as another begins does not overlap it.
	sort.Slice(ev, func(i, j int) bool {
		return ev[i].at.Before(ev[j].at) || (ev[i].at.Equal(ev[j].at) && ev[i].d < ev[j].d)
	})
	n := 0
	for _, e := range ev {
		n += e.d
		peak = max(peak, n)
	}
	return peak, busy
}

// reclaimed returns the first hold of the killed worker's slot after its
// own: the slot reclaimed (its token is greater than the killed one's).
func reclaimed(holds []hold, k kill1) (hold, bool) {
	var first hold
	ok := false
	for _, h := range holds {
		if h.slot == k.slot && h.token > k.token && (!ok || h.token < first.token) {
			first, ok = h, true
		}
	}
	return first, ok
}
