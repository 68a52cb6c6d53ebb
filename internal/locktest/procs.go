package locktest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Helper processes.
//
// The cross-process tests re-execute the test binary (in the style of
// cmd/go/internal/lockedfile's tests) with DOTLOCK_HELPER set; the binary's
// TestMain, which must be Main, then plays a helper's role instead of
// running tests. A helper talks to the test through its standard streams:
//
//   - it writes one line per event to stdout, first "ready PID STARTID"
//     (its PID and start ID as it sees them itself: in another PID
//     namespace they are not the test's), then role-specific lines
//     (see HelperSpec), and "error MESSAGE" (exiting with status 1) when
//     something fails;
//   - it reads lines from stdin: "start" where a role waits for a go-ahead;
//     closing stdin means "release what you hold and exit".
//
// The test side is Helper (StartHelper): it reads the lines with
// deadlines, never sleeps to synchronise, and kills leftovers in
// t.Cleanup. Other test packages (e.g. a two-host harness that starts
// processes through its own wrappers) use HelperCmd to build the command
// line and StartHelper to drive it; their TestMain must call Main with
// their Kind.

// Environment variables read by Main in a helper process.
const (
	HelperEnv     = "DOTLOCK_HELPER"      // the role; set only in helper processes
	HelperKindEnv = "DOTLOCK_HELPER_KIND" // Kind.Name the helper must run under
	HelperSpecEnv = "DOTLOCK_HELPER_SPEC" // the HelperSpec, as JSON
)

// Helper roles (HelperSpec.Role).
const (
	// RoleCounter waits for "start", then runs Goroutines goroutines, each
	// with its own handle, each doing Iterations times: Lock, read the
	// decimal number in Counter, write it back plus one (a plain read and
	// write: lost updates show any breach of mutual exclusion), append
	// "PID TOKEN VALUE" to Log with O_APPEND, Unlock. Then prints
	// "done COUNT" and exits.
	RoleCounter = "counter"
	// RoleHold takes the lock with Lock (with Shared, RLock), prints
	// "held TOKEN UUID" (of its own record: for a shared hold, its reader
	// record), and holds it until stdin is closed; then unlocks and prints
	// "released" (or "unlock-error MESSAGE") and exits. It prints "lost"
	// if the hold is found lost meanwhile. With Log set it appends
	// "acquire TOKEN PID" after acquiring and "release TOKEN PID" before
	// unlocking.
	RoleHold = "hold"
	// RoleContend is RoleHold that first waits for a "start" line, and
	// prints "won TOKEN UUID" instead of "held ...". If the Lock times out
	// (HelperSpec.Timeout) it prints "timeout" and exits.
	RoleContend = "contend"
	// RoleIdle takes nothing: it prints "ready PID STARTID" and waits for
	// stdin to close. It is a live process whose PID tests can put in records.
	RoleIdle = "idle"
)

// HelperSpec says what a helper process does.
type HelperSpec struct {
	Role string // one of the Role constants
	Path string // lock path
	Log  string // O_APPEND event log (counter, chaos: required; hold, contend, loop: optional)

	// Shared makes the hold, contend and loop roles take the lock shared
	// (RLock/RUnlock); they need the lockdir Kind then.
	Shared bool

	Counter    string // counter file (counter)
	Iterations int    // lock/unlock cycles per goroutine (counter: default 100; loop, file: 0 is until stdin closes)
	Goroutines int    // goroutines, each with its own handle (counter; default 1)

	Hold        time.Duration // loop: how long each hold lasts (the work done holding)
	WatchQueue  bool          // loop: log when it waits, and when its queue record appears
	WaitReaders bool          // loop: begin each round only while readers hold (lockdir)
	Data        string        // file: the data file (DataContent format)

	StaleAfter time.Duration // WithStaleAfter, if not 0
	PollMax    time.Duration // WithPoll(PollMin or 1ms, PollMax), if not 0
	PollMin    time.Duration
	Timeout    time.Duration // bound on each Lock call (default 60s)

	// ReportTries makes the helper print "tried PID" each time its lock
	// judges a holder's record (each lookup of PID in the process table).
	// Helper counts these lines (Tries) instead of queueing them.
	ReportTries bool
}

// HelperCmd returns the program, its arguments (after the program name) and
// the extra environment that run the current test binary as a helper playing
// s under kind k. The caller
// starts it however it likes, with env appended to its environment:
//
//	name, argv, env := locktest.HelperCmd(k, spec)
//	cmd := cluster.CommandB(name, argv...) // or exec.Command(name, argv...)
//	cmd.Env = append(os.Environ(), env...)
//	h := locktest.StartHelper(t, "holder", cmd)
//
// The test binary's TestMain must be Main(m, k) (with a Kind named like k).
func HelperCmd(k Kind, s HelperSpec) (name string, argv []string, env []string) {
	name, err := os.Executable()
	if err != nil {
		name = os.Args[0]
	}
	spec, err := json.Marshal(s)
	if err != nil {
		panic(err) // a struct of strings, numbers and bools
	}
	argv = []string{"-test.run=^$", "-test.count=1"}
	env = []string{
		HelperEnv + "=" + s.Role,
		HelperKindEnv + "=" + k.Name,
		HelperSpecEnv + "=" + string(spec),
		// Under -race a process sleeps 1s at exit unless told not to.
		"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	}
	return name, argv, env
}

// HelperCommand is HelperCmd as a plain *exec.Cmd on this host, with the
// test's environment plus the helper's.
func HelperCommand(k Kind, s HelperSpec) *exec.Cmd {
	name, argv, env := HelperCmd(k, s)
	cmd := exec.Command(name, argv...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Main is the TestMain of a lock package's tests: when the test binary is
// re-executed as a helper process it runs the helper's role and exits;
// otherwise it runs the tests.
func Main(m *testing.M, k Kind) {
	if role := os.Getenv(HelperEnv); role != "" {
		os.Exit(procHelperMain(k, role))
	}
	os.Exit(m.Run())
}

// procHelperMain decodes the spec and plays its role; it returns the exit status.
func procHelperMain(k Kind, role string) int {
	var s HelperSpec
	if err := json.Unmarshal([]byte(os.Getenv(HelperSpecEnv)), &s); err != nil {
		fmt.Fprintf(os.Stderr, "helper: bad %s: %v\n", HelperSpecEnv, err)
		return 2
	}
	if s.Role != role {
		fmt.Fprintf(os.Stderr, "helper: %s=%q but spec role %q\n", HelperEnv, role, s.Role)
		return 2
	}
	if want := os.Getenv(HelperKindEnv); want != k.Name {
		fmt.Fprintf(os.Stderr, "helper: asked for kind %q, this binary tests %q\n", want, k.Name)
		return 2
	}
	return procRunRole(k, s)
}

// CanStop says whether helpers can be stopped (Stop) and continued (Cont)
// on this system.
const CanStop = procCanStop

// Ready takes the helper's "ready PID STARTID" line and returns the PID.
func (h *Helper) Ready(t testing.TB) int {
	t.Helper()
	pid, _ := procReady(t, h)
	return pid
}

// RunProcesses runs the cross-process suite (real helper processes, real
// SIGKILLs) against k.
func RunProcesses(t *testing.T, k Kind) {
	t.Run("Counter", func(t *testing.T) { testCounter(t, k) })
	t.Run("KillReclaim", func(t *testing.T) { testKillReclaim(t, k) })
	t.Run("KillWhileWaiting", func(t *testing.T) { testKillWhileWaiting(t, k) })
	t.Run("RacingContenders", func(t *testing.T) { testRacingContenders(t, k) })
	t.Run("PIDReuse", func(t *testing.T) { testPIDReuse(t, k) })
	t.Run("StoppedHolder", func(t *testing.T) { testStoppedHolder(t, k) })
	t.Run("ProcessesAndGoroutines", func(t *testing.T) { testProcessesAndGoroutines(t, k) })
	t.Run("WakeOnRelease", func(t *testing.T) { testWakeOnRelease(t, k) })
	t.Run("WakeOnHolderExit", func(t *testing.T) { testWakeOnHolderExit(t, k) })
	t.Run("NoBarging", func(t *testing.T) { testNoBarging(t, k) })
}
