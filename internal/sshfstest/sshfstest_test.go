//go:build linux

package sshfstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects the role of TestHelperProcess when the test binary is
// re-executed as a helper (in the style of cmd/go's lockedfile tests).
const (
	helperEnv = "SSHFSTEST_HELPER"
	echoEnv   = "SSHFSTEST_ECHO"
)

// helperTimeout bounds every wait for a helper process; it is a failure
// deadline, not a synchronisation delay.
const helperTimeout = 30 * time.Second

// helperReport is what a helper prints, as one JSON line, on stdout.
type helperReport struct {
	Hostname string
	PID      int
	BootID   string
	Echo     string
	Result   string // "ok", "exists", or an error message
}

// TestHelperProcess is not a real test: it is the body of the helper
// processes the tests start with CommandA, CommandB and CommandBootID.
// Arguments after "--": ROLE [PATH].
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	args := os.Args
	for len(args) > 0 && args[0] != "--" {
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "helper: missing role")
		os.Exit(2)
	}
	role, args := args[1], args[2:]
	var rep helperReport
	result := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, fs.ErrExist):
			return "exists"
		default:
			return err.Error()
		}
	}
	switch role {
	case "flock":
		f, err := os.OpenFile(args[0], os.O_RDWR|os.O_CREATE, 0o644)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		rep.Result = result(err)
	case "excl":
		f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.Close()
		}
		rep.Result = result(err)
	case "mkdir":
		rep.Result = result(os.Mkdir(args[0], 0o755))
	case "identity":
		var err error
		rep.Hostname, err = os.Hostname()
		if err != nil {
			rep.Result = err.Error()
		}
		rep.PID = os.Getpid()
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err != nil {
			rep.Result = err.Error()
		}
		rep.BootID = strings.TrimSpace(string(b))
		rep.Echo = os.Getenv(echoEnv)
		if rep.Result == "" {
			rep.Result = "ok"
		}
	default:
		fmt.Fprintf(os.Stderr, "helper: unknown role %q\n", role)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		os.Exit(3)
	}
	if role == "identity" {
		// Stay alive until stdin is closed (or we are killed).
		io.Copy(io.Discard, os.Stdin)
	}
	os.Exit(0)
}

// helperArgs returns the arguments that re-execute the test binary as a
// helper in the given role.
func helperArgs(role string, args ...string) []string {
	return append([]string{"-test.run=^TestHelperProcess$", "--", role}, args...)
}

// helperCmd sets up cmd's environment for a helper in the given role.
// Under -race, a process sleeps 1 s at exit (GORACE atexit_sleep_ms); the
// helpers turn that off, which makes each helper run about 1 s shorter.
func helperCmd(cmd *exec.Cmd, role string, extraEnv ...string) *exec.Cmd {
	env := append(os.Environ(), helperEnv+"="+role,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(env, extraEnv...)
	return cmd
}

// runHelper runs a helper to completion and returns its report.
func runHelper(t *testing.T, cmd *exec.Cmd) helperReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting helper: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("helper %q failed: %v\nstdout: %s\nstderr: %s", cmd.Args, err, &stdout, &stderr)
		}
	case <-time.After(helperTimeout):
		if pid, err := HostPID(cmd); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("helper %q did not finish within %v", cmd.Args, helperTimeout)
	}
	var rep helperReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("helper %q: bad report %q: %v\nstderr: %s", cmd.Args, stdout.String(), err, &stderr)
	}
	return rep
}

func TestFlockDoesNotExcludeAcrossMounts(t *testing.T) {
	c := Start(t, Options{})

	// Host A holds an flock through MountA.
	lockA := filepath.Join(c.MountA, "flocked")
	f, err := os.OpenFile(lockA, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("flock through MountA: %v", err)
	}

	// Control: another process on host A, through the same mount, is
	// excluded, so the helper's flock is a real one.
	rep := runHelper(t, helperCmd(c.CommandA(os.Args[0], helperArgs("flock", lockA)...), "flock"))
	if rep.Result == "ok" {
		t.Fatalf("a second host-A process also got the flock through MountA; flock does not work on sshfs at all")
	}
	t.Logf("second flock on host A through MountA: %s (expected)", rep.Result)

	// Host B, through MountB, must get it too: flock is local to a client.
	rep = runHelper(t, helperCmd(c.CommandB(os.Args[0], helperArgs("flock", filepath.Join(c.MountB, "flocked"))...), "flock"))
	if rep.Result != "ok" {
		t.Fatalf("host B could not take the flock through MountB while host A holds it (%s): the two mounts do not behave like two NFS clients, so the harness is not simulating two hosts", rep.Result)
	}

	// O_EXCL creation excludes across the mounts, both ways.
	if err := os.WriteFile(filepath.Join(c.MountA, "excl-a"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fe, err := os.OpenFile(filepath.Join(c.MountA, "excl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("O_EXCL create through MountA: %v", err)
	}
	fe.Close()
	rep = runHelper(t, helperCmd(c.CommandB(os.Args[0], helperArgs("excl", filepath.Join(c.MountB, "excl"))...), "excl"))
	if rep.Result != "exists" {
		t.Fatalf("O_EXCL create of a name host A created, by host B through MountB: got %q, want EEXIST", rep.Result)
	}
	rep = runHelper(t, helperCmd(c.CommandB(os.Args[0], helperArgs("excl", filepath.Join(c.MountB, "excl-b"))...), "excl"))
	if rep.Result != "ok" {
		t.Fatalf("O_EXCL create of a fresh name by host B: %s", rep.Result)
	}
	if _, err := os.OpenFile(filepath.Join(c.MountA, "excl-b"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL create through MountA of a name host B created: got %v, want EEXIST", err)
	}

	// mkdir likewise.
	if err := os.Mkdir(filepath.Join(c.MountA, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	rep = runHelper(t, helperCmd(c.CommandB(os.Args[0], helperArgs("mkdir", filepath.Join(c.MountB, "dir"))...), "mkdir"))
	if rep.Result != "exists" {
		t.Fatalf("mkdir through MountB of a directory host A made: got %q, want EEXIST", rep.Result)
	}
	rep = runHelper(t, helperCmd(c.CommandB(os.Args[0], helperArgs("mkdir", filepath.Join(c.MountB, "dir-b"))...), "mkdir"))
	if rep.Result != "ok" {
		t.Fatalf("mkdir of a fresh name by host B: %s", rep.Result)
	}
	if err := os.Mkdir(filepath.Join(c.MountA, "dir-b"), 0o755); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("mkdir through MountA of a directory host B made: got %v, want EEXIST", err)
	}

	// The server's view has everything exactly once.
	for _, n := range []string{"flocked", "excl", "excl-b", "dir", "dir-b"} {
		if _, err := os.Lstat(filepath.Join(c.Export, n)); err != nil {
			t.Errorf("export: %v", err)
		}
	}
}

// startIdentity starts a long-running identity helper and returns its
// report; the helper runs until its stdin is closed or it is killed.
func startIdentity(t *testing.T, cmd *exec.Cmd, echo string) (helperReport, io.WriteCloser, <-chan error) {
	t.Helper()
	helperCmd(cmd, "identity", echoEnv+"="+echo)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(helperTimeout):
		t.Fatalf("identity helper sent no report within %v", helperTimeout)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var rep helperReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		err2 := <-done
		t.Fatalf("identity helper: bad report %q: %v (exit: %v)\nstderr: %s", line, err, err2, &stderr)
	}
	if rep.Result != "ok" {
		t.Fatalf("identity helper: %s", rep.Result)
	}
	return rep, stdin, done
}

func realBootID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// nsPIDs returns the NSpid line of /proc/PID/status: the process's PID in
// each PID namespace it belongs to, outermost first.
func nsPIDs(t *testing.T, pid int) []int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			var pids []int
			for _, f := range strings.Fields(rest) {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("bad NSpid line %q", line)
				}
				pids = append(pids, n)
			}
			return pids
		}
	}
	t.Fatalf("no NSpid in /proc/%d/status", pid)
	return nil
}

// waitState polls /proc/PID/stat until the process's state satisfies ok.
func waitState(t *testing.T, pid int, what string, ok func(byte) bool) {
	t.Helper()
	deadline := time.Now().Add(helperTimeout)
	for {
		st, err := procState(pid)
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not %s after %v (state %c)", pid, what, helperTimeout, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHostBIdentity(t *testing.T) {
	c := Start(t, Options{})
	hostA, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	bootA := realBootID(t)

	cmd := c.CommandB(os.Args[0], helperArgs("identity")...)
	rep, stdin, done := startIdentity(t, cmd, "echo-b1")
	t.Logf("host B helper: hostname %q, pid %d, boot ID %s", rep.Hostname, rep.PID, rep.BootID)

	if rep.Hostname != c.HostB || rep.Hostname == hostA {
		t.Errorf("host B's host name is %q; want %q (host A is %q)", rep.Hostname, c.HostB, hostA)
	}
	if rep.Echo != "echo-b1" {
		t.Errorf("environment did not reach the host-B process: %s=%q", echoEnv, rep.Echo)
	}
	if rep.BootID != c.BootIDB || rep.BootID == bootA {
		t.Errorf("host B's boot ID is %q; want %q (host A's is %q)", rep.BootID, c.BootIDB, bootA)
	}
	if rep.PID < 1 || rep.PID > 1000 {
		t.Errorf("host B's getpid() = %d; want a small number from a fresh PID namespace", rep.PID)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", rep.PID)); err != nil && rep.PID > 2 {
		t.Errorf("host B's PID %d does not exist on host A (%v); want a colliding PID", rep.PID, err)
	}

	pid, err := HostPID(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if pid == cmd.Process.Pid {
		t.Errorf("HostPID returned the wrapper's PID %d", pid)
	}
	if ns := nsPIDs(t, pid); len(ns) < 2 || ns[0] != pid || ns[len(ns)-1] != rep.PID {
		t.Errorf("HostPID = %d with NSpid %v; want the process whose PID in host B is %d", pid, ns, rep.PID)
	}
	if argv, err := readCmdline(pid); err != nil || len(argv) == 0 || argv[0] != os.Args[0] {
		t.Errorf("HostPID = %d runs %q (%v); want the test binary %q", pid, argv, err, os.Args[0])
	}

	// A second host-B process shares host B's PID namespace: different PID.
	cmd2 := c.CommandB(os.Args[0], helperArgs("identity")...)
	rep2, stdin2, done2 := startIdentity(t, cmd2, "echo-b2")
	if rep2.PID == rep.PID || rep2.Hostname != c.HostB {
		t.Errorf("second host-B process: pid %d host %q; want a PID other than %d on %q", rep2.PID, rep2.Hostname, rep.PID, c.HostB)
	}
	stdin2.Close()
	select {
	case err := <-done2:
		if err != nil {
			t.Errorf("second host-B helper: %v", err)
		}
	case <-time.After(helperTimeout):
		t.Fatalf("second host-B helper did not exit after its stdin was closed")
	}

	// SIGSTOP/SIGCONT reach exactly the target; the wrapper keeps running.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState(t, pid, "stopped", func(s byte) bool { return s == 'T' })
	if s, err := procState(cmd.Process.Pid); err != nil || s == 'T' {
		t.Errorf("wrapper %d state %c (%v) after stopping the target", cmd.Process.Pid, s, err)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitState(t, pid, "running", func(s byte) bool { return s != 'T' })

	// SIGKILL ends it, and the command reports the signal.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("Wait after SIGKILL: %v; want an ExitError", err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("Wait after SIGKILL: %v; want killed by SIGKILL", err)
		}
	case <-time.After(helperTimeout):
		t.Fatalf("host-B helper still running %v after SIGKILL", helperTimeout)
	}
	stdin.Close()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		if argv, _ := readCmdline(pid); len(argv) > 0 && argv[0] == os.Args[0] {
			t.Errorf("process %d still exists after SIGKILL and Wait", pid)
		}
	}
}

func TestFakedBootID(t *testing.T) {
	c := Start(t, Options{})
	hostA, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	bootA := realBootID(t)
	fake := NewBootID()
	if fake == bootA {
		t.Fatal("NewBootID returned the real boot ID")
	}

	cmd := c.CommandBootID(fake, os.Args[0], helperArgs("identity")...)
	rep, stdin, done := startIdentity(t, cmd, "echo-boot")
	pid, err := HostPID(cmd)
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("boot-ID helper: %v", err)
		}
	case <-time.After(helperTimeout):
		t.Fatalf("boot-ID helper did not exit after its stdin was closed")
	}
	t.Logf("rebooted host A helper: hostname %q, pid %d, boot ID %s", rep.Hostname, rep.PID, rep.BootID)

	if rep.BootID != fake {
		t.Errorf("boot ID inside = %q; want the faked %q (real %q)", rep.BootID, fake, bootA)
	}
	if rep.Hostname != hostA {
		t.Errorf("host name inside = %q; want host A's %q", rep.Hostname, hostA)
	}
	if rep.PID != cmd.Process.Pid || pid != cmd.Process.Pid {
		t.Errorf("getpid() inside = %d, HostPID = %d; want both to be cmd.Process.Pid = %d", rep.PID, pid, cmd.Process.Pid)
	}
	if rep.Echo != "echo-boot" {
		t.Errorf("environment did not reach the process: %s=%q", echoEnv, rep.Echo)
	}
	if got := realBootID(t); got != bootA {
		t.Errorf("host A's boot ID changed from %q to %q: the bind mount leaked", bootA, got)
	}
}

func TestUncachedMountsSeeEachOther(t *testing.T) {
	c := Start(t, Options{})
	a := filepath.Join(c.MountA, "data")
	b := filepath.Join(c.MountB, "data")

	// B looks first, so any negative or attribute caching would bite.
	if _, err := os.Stat(b); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat through MountB before creation: %v", err)
	}
	if err := os.WriteFile(a, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(b); err != nil || string(got) != "v1" {
		t.Fatalf("read through MountB right after host A created it: %q, %v; want %q", got, err, "v1")
	}

	// Overwrite with longer and then shorter contents.
	for _, want := range []string{"version two, longer", "v3"} {
		if err := os.WriteFile(a, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(b); err != nil || string(got) != want {
			t.Fatalf("read through MountB right after host A rewrote it: %q, %v; want %q", got, err, want)
		}
	}

	// So do attribute changes (lock code often uses mtime as a heartbeat).
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(a, old, old); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(b); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("mtime through MountB right after host A set it to %v: %v, %v", old, fi.ModTime(), err)
	}

	// Writes through B show up through A, and in the export.
	if err := os.WriteFile(b, []byte("from B"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(a); err != nil || string(got) != "from B" {
		t.Fatalf("read through MountA right after host B wrote: %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(c.Export, "data")); err != nil || string(got) != "from B" {
		t.Fatalf("read in the export: %q, %v", got, err)
	}

	// Removal and renames too.
	if err := os.Rename(a, a+".new"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat through MountB after host A renamed the file away: %v", err)
	}
	if got, err := os.ReadFile(b + ".new"); err != nil || string(got) != "from B" {
		t.Fatalf("read of the renamed file through MountB: %q, %v", got, err)
	}
	if err := os.Remove(a + ".new"); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(c.MountB); err != nil || len(ents) != 0 {
		t.Fatalf("listing MountB after host A removed everything: %v, %v", ents, err)
	}
}

// TestCachedMountsLag checks that Options.Cached really gives the lagging
// behaviour of an attribute-caching NFS client: right after host A changes
// an mtime or removes a file, host B still sees the old state (for about
// 20 s, which this test does not wait for).
func TestCachedMountsLag(t *testing.T) {
	c := Start(t, Options{Cached: true})
	a := filepath.Join(c.MountA, "data")
	b := filepath.Join(c.MountB, "data")
	if err := os.WriteFile(a, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(b) // host B caches the attributes now
	if err != nil {
		t.Fatal(err)
	}
	before := fi.ModTime()
	old := before.Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(a, old, old); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(b); err != nil || !fi.ModTime().Equal(before) {
		t.Errorf("cached mode: mtime through MountB right after host A changed it: %v, %v; want the cached %v", fi.ModTime(), err, before)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Errorf("cached mode: stat through MountB right after host A removed the file: %v; want the cached entry", err)
	}
	// The stale entry even makes an O_EXCL create fail on host B.
	if _, err := os.OpenFile(b, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("cached mode: O_EXCL create through MountB of a name host A just removed: %v; want EEXIST from the stale cache", err)
	}
	if _, err := os.Lstat(filepath.Join(c.Export, "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("export still has the removed file: %v", err)
	}
}

// TestTeardown checks that the cleanup registered by Start leaves nothing
// behind: no daemons, no host-B processes, no mounts, no temporary files.
func TestTeardown(t *testing.T) {
	var (
		dir      string
		daemons  []int
		initPID  int
		target   int
		done     = make(chan error, 1)
		stdinR   *os.File
		stdinW   *os.File
		mountDir []string
	)
	var err error
	stdinR, stdinW, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	started := false
	ok := t.Run("cluster", func(t *testing.T) {
		c := Start(t, Options{})
		started = true
		dir, initPID = c.dir, c.initPID
		mountDir = []string{c.MountA, c.MountB}
		for _, d := range c.state.daemons {
			daemons = append(daemons, d.cmd.Process.Pid)
		}
		// A host-B process that would run forever.
		cmd := helperCmd(c.CommandB(os.Args[0], helperArgs("identity")...), "identity")
		cmd.Stdin = stdinR
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		if target, err = HostPID(cmd); err != nil {
			t.Fatal(err)
		}
	})
	stdinR.Close()
	if !ok {
		t.Fatal("cluster subtest failed")
	}
	if !started {
		t.Skip("sshfstest: the cluster subtest was skipped (see its reason)")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("host-B process exited normally; want it killed by the teardown")
		}
	case <-time.After(helperTimeout):
		t.Fatalf("host-B process %d still running after teardown", target)
	}
	for _, pid := range append(daemons, initPID, target) {
		if st, err := procState(pid); err == nil && st != 'Z' {
			t.Errorf("process %d still exists after teardown (state %c)", pid, st)
		}
	}
	for _, m := range mountDir {
		if ok, err := isFuseMount(m); err != nil || ok {
			t.Errorf("%s still mounted after teardown (%v)", m, err)
		}
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary directory %s not removed: %v", dir, err)
	}
}
