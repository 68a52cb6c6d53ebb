// Command bench runs dotlock's side-by-side benchmarks and writes
// RESULTS.md. Run it from the bench directory:
//
//	cd bench && go run ./cmd/bench
//
// It measures, on each filesystem (-fs, default /tmp and /dev/shm), in one
// run: (1) uncontended lock+unlock, (2) 2, 4 and 8 contending processes,
// (3) crash recovery after SIGKILL, (4) 10,000 locks in one directory and
// 100 readers on one lock, (5) whole-process CLI time — dotlock beside the
// raw primitives, flock, Go peers, Node's proper-lockfile, Python's filelock
// and the flock(1), dotlockfile(1) and lockfile(1) commands. Before it
// starts it waits (up to -quiet-wait) for the 1-minute load average to
// fall below -quiet, and records the load.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotlock/dotlock/bench"
)

type config struct {
	fss       []string
	dur       time.Duration
	quick     bool
	only      map[int]bool
	out       string
	quiet     float64
	quietWait time.Duration
	crashReps int
	sshfs     bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := worker(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	fsList := flag.String("fs", "/tmp,/dev/shm", "comma-separated directories, one per filesystem to measure on")
	flag.DurationVar(&cfg.dur, "dur", 2*time.Second, "length of each contended run")
	flag.BoolVar(&cfg.quick, "quick", false, "short runs, for trying the driver out (numbers are rough)")
	only := flag.String("only", "1,2,3,4,5,6", "scenarios to run")
	flag.StringVar(&cfg.out, "out", "RESULTS.md", "where to write the results")
	flag.Float64Var(&cfg.quiet, "quiet", 0.7, "wait for the 1-minute load average to fall below this before measuring")
	flag.DurationVar(&cfg.quietWait, "quiet-wait", 10*time.Minute, "wait at most this long for a quiet machine (0: do not wait)")
	flag.IntVar(&cfg.crashReps, "crash-reps", 10, "repetitions of each crash-recovery measurement")
	flag.BoolVar(&cfg.sshfs, "sshfs", true, "also measure on two sshfs mounts of one export (needs root, sshd, sshfs; skipped with the reason otherwise)")
	flag.Parse()
	for _, f := range strings.Split(*fsList, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.fss = append(cfg.fss, f)
		}
	}
	cfg.only = map[int]bool{}
	for _, s := range strings.Split(*only, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fatalf("-only: %v", err)
		}
		cfg.only[n] = true
	}
	if cfg.quick {
		cfg.dur = 500 * time.Millisecond
		cfg.crashReps = 3
	}
	var err error
	if self, err = os.Executable(); err != nil {
		fatalf("%v", err)
	}
	wd, _ := os.Getwd()
	root := filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(wd, "peers.go")); err != nil {
		fatalf("run from the bench directory: cd bench && go run ./cmd/bench")
	}
	nodeDir = filepath.Join(wd, "node")
	pythonScript = filepath.Join(wd, "python", "bench_filelock.py")

	res := &Results{Started: time.Now(), Cfg: cfg}
	res.LoadBefore, res.QuietWaited = waitQuiet(cfg.quiet, cfg.quietWait)
	res.Measured = time.Now()
	stopSampling := sampleLoad(&res.LoadPeak)
	res.Sys = sysInfo(root, cfg.fss)
	if err := haveNode(); err != nil {
		res.Skipped = append(res.Skipped, "Node proper-lockfile: "+err.Error())
	} else {
		res.HaveNode = true
	}
	if err := havePython(); err != nil {
		res.Skipped = append(res.Skipped, "Python filelock: "+err.Error())
	} else {
		res.HavePython = true
	}
	if err := exec.Command("unshare", "--uts", "true").Run(); err != nil {
		res.Skipped = append(res.Skipped, "cross-host lease (holder in its own UTS namespace): unshare --uts failed: "+err.Error()+" (needs root)")
	} else {
		res.HaveUnshare = true
	}
	var pair *sshfsPair
	if cfg.sshfs {
		if pair, err = startSSHFS(); err != nil {
			res.Skipped = append(res.Skipped, "sshfs: "+err.Error())
			pair = nil
		} else {
			defer pair.stop()
			stopOnSignal(pair)
		}
	} else {
		res.Skipped = append(res.Skipped, "sshfs: -sshfs=false")
	}

	tmp, err := os.MkdirTemp("", "dotlock-bench-bin-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(tmp)

	var frs []*FSResults
	for _, fs := range cfg.fss {
		frs = append(frs, &FSResults{Dir: fs, Type: res.Sys.FSTypes[fs]})
	}
	if pair != nil {
		res.Sys.FSTypes[pair.A] = "fuse.sshfs: one directory exported by sshd on 127.0.0.1, mounted twice (" + pair.B + ") with " + pair.opts
		fr := &FSResults{Dir: pair.A, Alt: pair.B, Type: res.Sys.FSTypes[pair.A]}
		if fr.counter, err = pair.startCounting(); err != nil {
			res.Skipped = append(res.Skipped, "requests per lock+unlock on sshfs: "+err.Error())
		}
		frs = append(frs, fr)
	}
	for _, fr := range frs {
		res.FS = append(res.FS, fr)
		fr.Excluded = map[string]string{}
		for _, name := range bench.Names() {
			if err := probe(name, fr.Dir); err != nil {
				fr.Excluded[name] = err.Error()
				logf("%s on %s: excluded: %v", name, fr.Dir, err)
			}
		}
		if cfg.only[1] {
			scenario1(cfg, res, fr)
		}
		if cfg.only[2] {
			scenario2(cfg, res, fr)
		}
		if cfg.only[3] {
			scenario3(cfg, res, fr)
		}
		if cfg.only[4] && fr.Alt == "" {
			scenario4(cfg, res, fr)
		}
		if cfg.only[6] {
			scenario6(cfg, fr)
		}
	}
	if cfg.only[5] {
		dl, dls, err := buildDotlock(root, tmp)
		if err != nil {
			res.Skipped = append(res.Skipped, "dotlock command: "+err.Error())
		}
		gr, err := buildGoRun(root, tmp)
		if err != nil {
			res.Skipped = append(res.Skipped, "Go floor: "+err.Error())
		}
		for _, fr := range res.FS {
			logf("5. CLI on %s", fr.Dir)
			for _, c := range cliCases(dl, dls, gr) {
				warm, reps := 5, 60
				if cfg.quick {
					warm, reps = 2, 10
				}
				fr.CLI = append(fr.CLI, runCLI(c, fr.Dir, warm, reps))
			}
		}
	}
	res.Finished = time.Now()
	stopSampling()
	res.LoadAfter = loadavg()
	md := render(res)
	if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
		fatalf("%v", err)
	}
	logf("wrote %s (%v)", cfg.out, res.Finished.Sub(res.Started).Round(time.Second))
}

// local reports whether f is a local filesystem, by its type as findmnt
// gave it: not the sshfs pair, nor a network or FUSE filesystem.
func (f *FSResults) local() bool {
	t := strings.Fields(f.Type)
	if f.Alt != "" || len(t) == 0 {
		return false
	}
	for _, net := range []string{"nfs", "cifs", "smb", "fuse", "9p", "ceph", "glusterfs", "lustre", "afs", "gpfs", "beegfs", "virtiofs"} {
		if strings.HasPrefix(t[0], net) {
			return false
		}
	}
	return true
}

func scenario1(cfg config, res *Results, fr *FSResults) {
	logf("1. uncontended on %s", fr.Dir)
	rounds, batchDur := 7, 100*time.Millisecond
	if cfg.quick {
		rounds, batchDur = 3, 30*time.Millisecond
	}
	names := benchUncontended()
	if !fr.local() {
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return bench.Peers[n].LocalOnly })
	}
	fr.Uncontended = append(fr.Uncontended, uncontendedRounds(names, fr.Excluded, fr.Dir, rounds, batchDur)...)
	ops := 500
	if cfg.quick {
		ops = 100
	}
	if res.HaveNode {
		fr.Uncontended = append(fr.Uncontended, uncontendedProc(nodeImpl(1, ""), fr.Dir, 5, ops))
	}
	if res.HavePython {
		fr.Uncontended = append(fr.Uncontended, uncontendedProc(pyImpl("soft", time.Millisecond, ""), fr.Dir, 5, ops))
		fr.Uncontended = append(fr.Uncontended, uncontendedProc(pyImpl("flock", time.Millisecond, ""), fr.Dir, 5, ops))
	}
	if fr.counter != nil {
		for _, name := range names {
			if fr.Excluded[name] == "" && name != "flock" { // flock(2) is local to a mount: no requests
				fr.Calls = append(fr.Calls, fr.counter.count(name, 20))
			}
		}
	}
}

// contendImpls are scenario 2's implementations at every process count;
// sweep are extra settings tried at 4 processes only.
func contendImpls(res *Results) (base, sweep []Impl) {
	base = []Impl{
		goImpl("flock", "floor", "flock", "", false),
		goImpl("dotlock-lockfile", "dotlock", "dotlock-lockfile", "", true),
		goImpl("dotlock-lockdir", "dotlock", "dotlock-lockdir", "", true),
		goImpl("gofrs-flock", "Go", "gofrs-flock", "", false),
		goImpl("lockedfile", "Go", "lockedfile", "", false),
		goImpl("nightlyone", "Go", "nightlyone,poll=1ms", "poll 1 ms", true),
	}
	sweep = []Impl{
		goImpl("dotlock-lockfile", "dotlock", "dotlock-lockfile,poll=1ms,pollmax=1ms", "WithPoll(1ms, 1ms)", true),
		goImpl("dotlock-lockdir", "dotlock", "dotlock-lockdir,poll=1ms,pollmax=1ms", "WithPoll(1ms, 1ms)", true),
		goImpl("nightlyone", "Go", "nightlyone,poll=100us", "poll 0.1 ms", true),
		goImpl("nightlyone", "Go", "nightlyone,poll=10ms", "poll 10 ms", true),
	}
	if res.HaveNode {
		base = append(base, nodeImpl(1, "retry every 1 ms"))
		sweep = append(sweep, nodeImpl(10, "retry every 10 ms"))
	}
	if res.HavePython {
		base = append(base, pyImpl("soft", time.Millisecond, "poll 1 ms"), pyImpl("flock", time.Millisecond, "poll 1 ms"))
		sweep = append(sweep,
			pyImpl("soft", 50*time.Millisecond, "poll 50 ms, its default"),
			pyImpl("soft", 100*time.Microsecond, "poll 0.1 ms"),
			pyImpl("flock", 50*time.Millisecond, "poll 50 ms, its default"),
			pyImpl("flock", 100*time.Microsecond, "poll 0.1 ms"),
		)
	}
	return base, sweep
}

func scenario2(cfg config, res *Results, fr *FSResults) {
	base, sweep := contendImpls(res)
	counts := []int{2, 4, 8}
	if fr.Alt != "" {
		counts = []int{4} // sshfs is slow: the target's count only
	}
	for _, n := range counts {
		logf("2. contended, %d processes, on %s", n, fr.Dir)
		impls := base
		if n == 4 {
			impls = append(append([]Impl(nil), base...), sweep...)
		}
		for _, impl := range impls {
			if why := fr.excluded(impl); why != "" {
				fr.Contended = append(fr.Contended, ContendResult{Impl: impl, Procs: n, Err: fmt.Errorf("excluded: %s", why)})
				continue
			}
			fr.Contended = append(fr.Contended, contended(impl, fr.Dirs(), n, cfg.dur))
		}
	}
}

func scenario3(cfg config, res *Results, fr *FSResults) {
	logf("3. crash recovery on %s", fr.Dir)
	settle := 200 * time.Millisecond
	reps := cfg.crashReps
	if fr.Alt != "" {
		reps = min(reps, 5)
	}
	impls := []Impl{
		goImpl("flock", "floor", "flock", "", false),
		goImpl("dotlock-lockfile", "dotlock", "dotlock-lockfile", "", true),
		goImpl("dotlock-lockdir", "dotlock", "dotlock-lockdir", "", true),
		goImplHold("dotlock RWLock: dead reader, writer waits", "dotlock", "dotlock-rw-exclusive", "dotlock-rw-shared", "", true),
		goImpl("gofrs-flock", "Go", "gofrs-flock", "", false),
		goImpl("lockedfile", "Go", "lockedfile", "", false),
		goImpl("nightlyone", "Go", "nightlyone,poll=1ms", "poll 1 ms", true),
		goImpl("raw-excl", "floor", "raw-excl,poll=1ms", "poll 1 ms", true),
	}
	if res.HaveNode {
		impls = append(impls, nodeImpl(1, "stale 2 s (its minimum), update 1 s, retry every 1 ms"))
	}
	if res.HavePython {
		impls = append(impls, pyImpl("flock", time.Millisecond, "poll 1 ms"), pyImpl("soft", time.Millisecond, "poll 1 ms"))
	}
	for _, impl := range impls {
		if why := fr.excluded(impl); why != "" {
			fr.Crash = append(fr.Crash, CrashResult{Impl: impl, Err: fmt.Errorf("excluded: %s", why)})
			continue
		}
		timeout := 5 * time.Second
		if impl.Name == "raw-excl" || impl.Name == "python SoftFileLock" {
			timeout = 3 * time.Second
		}
		fr.Crash = append(fr.Crash, crash(impl, fr.Dirs(), reps, timeout, settle))
	}
	if res.HaveUnshare {
		for _, spec := range []string{"dotlock-lockfile", "dotlock-lockdir"} {
			impl := remoteHolder(goImpl(spec, "dotlock", spec+",stale=1s", "StaleAfter 1 s, heartbeat 250 ms", true))
			r := crash(impl, fr.Dirs(), min(reps, 5), 5*time.Second, settle)
			r.Remote = true
			fr.Crash = append(fr.Crash, r)
		}
	}
}

func scenario4(cfg config, res *Results, fr *FSResults) {
	logf("4. scale on %s", fr.Dir)
	n, reps := 10000, 3
	if cfg.quick {
		n, reps = 1000, 1
	}
	for _, name := range []string{"raw-excl", "raw-excl-open", "raw-mkdir", "dotlock-lockfile", "dotlock-lockdir", "gofrs-flock", "nightlyone", "lockedfile"} {
		if why := fr.Excluded[name]; why != "" {
			continue
		}
		fr.Scale = append(fr.Scale, scale(name, "distinct", fr.Dir, n, reps))
	}
	for _, name := range []string{"dotlock-rw-shared", "gofrs-flock-shared"} {
		fr.Scale = append(fr.Scale, scale(name, "readers", fr.Dir, 100, 5))
	}
}

// scenario6: the counting lock, 2N processes against N slots, each
// holding a slot 1 ms per round.
func scenario6(cfg config, fr *FSResults) {
	counts := []int{1, 2, 4}
	if fr.Alt != "" {
		counts = []int{2} // sshfs is slow
	}
	for _, n := range counts {
		logf("6. counting lock, %d slots, %d processes, on %s", n, 2*n, fr.Dir)
		fr.Slots = append(fr.Slots, slotsRun(fr.Dirs(), n, time.Millisecond, cfg.dur))
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}

// waitQuiet polls the load average every 30 s until it is below limit or
// maxWait passes; it returns the load it started measuring with.
func waitQuiet(limit float64, maxWait time.Duration) (string, time.Duration) {
	start := time.Now()
	for {
		l := loadavg()
		f := strings.Fields(l)
		one, _ := strconv.ParseFloat(f[0], 64)
		if one < limit || time.Since(start) >= maxWait || maxWait <= 0 {
			return l, time.Since(start).Round(time.Second)
		}
		logf("load %s: waiting for the 1-minute load to fall below %.2f (%v of %v)", f[0], limit, time.Since(start).Round(time.Second), maxWait)
		time.Sleep(30 * time.Second)
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "? ? ?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// stopOnSignal unmounts sshfs if the run is interrupted.
func stopOnSignal(p *sshfsPair) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-ch
		logf("%v: unmounting sshfs", s)
		p.stop()
		os.Exit(1)
	}()
}

// sampleLoad records the highest 1-minute load average seen every 5 s until
// the returned function is called.
func sampleLoad(peak *float64) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	var max float64
	see := func() {
		f := strings.Fields(loadavg())
		if v, err := strconv.ParseFloat(f[0], 64); err == nil && v > max {
			max = v
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		see()
		for {
			select {
			case <-stop:
				see()
				return
			case <-t.C:
				see()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		*peak = max
	}
}
