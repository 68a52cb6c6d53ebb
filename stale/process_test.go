package stale_test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// helperEnv, when set in the environment, makes the test binary a helper
// process instead of running tests (cmd/go lockedfile style).
const helperEnv = "STALE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hidepid":
		os.Exit(hidepidJudge(os.Getenv("STALE_HIDEPID")))
	case "block":
		// Say we run, then block until stdin closes (or we are killed).
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// deadline bounds every wait for a real event in these tests.
const deadline = 20 * time.Second

// helper is a running child process: the test binary blocked on stdin.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	waited bool
}

// startHelper starts a blocking child and waits until it says it runs.
func startHelper(t *testing.T) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startHelperExe(t, exe)
}

// startHelperExe is startHelper running the test binary from path exe.
func startHelperExe(t *testing.T, exe string) *helper {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=block")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		if !h.waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("helper said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("helper pid %d did not start: %v", cmd.Process.Pid, err)
		}
	case <-time.After(deadline):
		t.Fatalf("helper pid %d not ready after %v", cmd.Process.Pid, deadline)
	}
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// wait reaps the helper.
func (h *helper) wait(t *testing.T) {
	t.Helper()
	h.waited = true
	err := h.cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("wait for helper pid %d: %v", h.pid(), err)
	}
}

func lookup(t *testing.T, pid int) stale.Process {
	t.Helper()
	p, err := stale.SystemProcesses{}.Lookup(pid)
	if err != nil {
		t.Fatalf("Lookup(%d): %v", pid, err)
	}
	return p
}

func TestSystemProcessesSelf(t *testing.T) {
	me := lookup(t, os.Getpid())
	if !me.Exists || me.Zombie {
		t.Fatalf("Lookup(own pid %d) = %+v, want a running process", os.Getpid(), me)
	}
	if me.StartID == "" {
		t.Fatalf("Lookup(own pid) has no StartID")
	}
	if again := lookup(t, os.Getpid()); again.StartID != me.StartID {
		t.Errorf("own StartID changed between lookups: %q then %q", me.StartID, again.StartID)
	}
	if me.Started.IsZero() || me.Started.After(time.Now().Add(2*time.Second)) {
		t.Errorf("own Started = %v, want a time in the past", me.Started)
	}

	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	o, err := stale.Self(9, stale.ModeShared, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := stale.LocalIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if o.StartID != me.StartID {
		t.Errorf("Self().StartID = %q, Lookup(own pid).StartID = %q", o.StartID, me.StartID)
	}
	if o.PID != os.Getpid() || o.Token != 9 || o.Mode != stale.ModeShared || o.Version != stale.FormatVersion ||
		!o.Acquired.Equal(now) || !o.BeatTime.Equal(now) || o.Beat != 0 || stale.Of(o) != id || o.UUID == "" {
		t.Errorf("Self(9, shared, %v) = %+v (identity %+v)", now, o, id)
	}
	o2, err := stale.Self(9, stale.ModeShared, now)
	if err != nil {
		t.Fatal(err)
	}
	if o2.UUID == o.UUID {
		t.Errorf("two Self records share UUID %q", o.UUID)
	}

	// A record of the running test process is judged alive by a real checker.
	c, err := stale.NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	if j := c.Judge(mustParse(t, o.Marshal())); j.Verdict != stale.Alive {
		t.Errorf("own record judged %v (%s), want alive", j.Verdict, j.Reason)
	}
}

func TestSystemProcessesNoPID(t *testing.T) {
	for _, pid := range []int{0, -1, -2, math.MinInt32, math.MinInt, math.MaxInt32 + 1, math.MaxInt} {
		p, err := stale.SystemProcesses{}.Lookup(pid)
		if err != nil || p.Exists {
			t.Errorf("Lookup(%d) = %+v, %v; want no process, no error", pid, p, err)
		}
	}
	// PID 1 exists in every PID namespace. Windows has no PID 1 (and Wine
	// no System process, PID 4): there, look up this process.
	pid := 1
	if runtime.GOOS == "windows" {
		pid = os.Getpid()
	}
	if p := lookup(t, pid); !p.Exists {
		t.Errorf("Lookup(%d) = %+v, want it to exist", pid, p)
	}
}

// TestSystemProcessesChild follows a real child through its life: running,
// killed but not reaped (a zombie), reaped.
func TestSystemProcessesChild(t *testing.T) {
	me := lookup(t, os.Getpid())
	c, err := stale.NewChecker()
	if err != nil {
		t.Fatal(err)
	}

	// StartID has clock-tick resolution (10ms on Linux): a child started
	// in the same tick as this process has its StartID. Start children until
	// one is from a later tick; a StartID that never changes fails here.
	var h *helper
	var child stale.Process
	stop := time.Now().Add(deadline)
	for tries := 1; ; tries++ {
		h = startHelper(t)
		child = lookup(t, h.pid())
		if child.StartID != me.StartID {
			t.Logf("child %d: StartID %q (ours %q), after %d start(s)", h.pid(), child.StartID, me.StartID, tries)
			break
		}
		h.cmd.Process.Kill()
		h.wait(t)
		if time.Now().After(stop) {
			t.Fatalf("after %d children, every child's StartID equals ours (%q)", tries, me.StartID)
		}
	}
	pid := h.pid()
	if !child.Exists || child.Zombie || child.StartID == "" {
		t.Fatalf("Lookup(child %d) = %+v, want a running process with a StartID", pid, child)
	}
	if again := lookup(t, pid); again.StartID != child.StartID || !again.Exists {
		t.Errorf("child lookups disagree: %+v then %+v", child, again)
	}

	o, err := stale.Self(1, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.PID, o.StartID = pid, child.StartID
	rec := mustParse(t, o.Marshal())
	if j := c.Judge(rec); j.Verdict != stale.Alive {
		t.Errorf("running child judged %v (%s), want alive", j.Verdict, j.Reason)
	}
	reused := rec
	reused.StartID = me.StartID // the record of another process that had this PID
	if j := c.Judge(reused); j.Verdict != stale.Dead || !strings.Contains(j.Reason, "reuse") {
		t.Errorf("child with another StartID judged %v (%s), want dead (reused)", j.Verdict, j.Reason)
	}

	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if waitZombie(t, pid) {
		z := lookup(t, pid)
		if !z.Exists || !z.Zombie {
			t.Errorf("Lookup(killed, unreaped child %d) = %+v, want Exists and Zombie", pid, z)
		}
		if j := c.Judge(rec); j.Verdict != stale.Dead || !strings.Contains(j.Reason, "zombie") {
			t.Errorf("zombie child judged %v (%s), want dead (zombie)", j.Verdict, j.Reason)
		}
	}

	h.wait(t)
	if p := lookup(t, pid); p.Exists {
		t.Errorf("Lookup(reaped child %d) = %+v, want no process", pid, p)
	}
	if j := c.Judge(rec); j.Verdict != stale.Dead {
		t.Errorf("reaped child judged %v (%s), want dead", j.Verdict, j.Reason)
	}
}

func TestLocalIdentity(t *testing.T) {
	id, err := stale.LocalIdentity()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if id.Host != host {
		t.Errorf("Host = %q, os.Hostname() = %q", id.Host, host)
	}
	if id.BootID == "" {
		t.Errorf("BootID is empty")
	}
	if again, _ := stale.LocalIdentity(); again != id {
		t.Errorf("LocalIdentity changed: %+v then %+v", id, again)
	}
	c, err := stale.NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	if c.Local != id {
		t.Errorf("NewChecker().Local = %+v, want %+v", c.Local, id)
	}
	if _, ok := c.Processes.(stale.SystemProcesses); !ok {
		t.Errorf("NewChecker().Processes is %T, want stale.SystemProcesses", c.Processes)
	}
	checkIdentityOS(t, id)
}
