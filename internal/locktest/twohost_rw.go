package locktest

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/sshfstest"
	"github.com/dotlock/dotlock/internal/testdir"
)

// The two-host tests of shared/exclusive locks (lockdir only) and of the
// dotlock command.

// thRWRun runs the lockdir-only two-host subtests.
func thRWRun(t *testing.T, k Kind) {
	t.Run("SharedAcrossHosts", func(t *testing.T) { thSharedAcrossHosts(t, k) })
	t.Run("ChaosRW", func(t *testing.T) { thChaosMode(t, k, false, true, 15*time.Second) })
	t.Run("CLIAcrossHosts", thCLIAcrossHosts)
}

// thRWSend sends cmd to a RoleRW helper and returns the words of its answer.
func thRWSend(t testing.TB, h *Helper, cmd string) []string {
	t.Helper()
	h.Send(t, cmd)
	f := strings.Fields(h.Next(t))
	if len(f) == 0 {
		t.Fatalf("helper %s: empty answer to %q", h.Label, cmd)
	}
	return f
}

// thRWHeld sends cmd and expects "held TOKEN"; it returns the token.
func thRWHeld(t testing.TB, h *Helper, cmd string) uint64 {
	t.Helper()
	f := thRWSend(t, h, cmd)
	if f[0] != "held" || len(f) != 2 {
		t.Fatalf("helper %s: %q answered %q, want held TOKEN\n%s", h.Label, cmd, f, h.describe())
	}
	tok, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || tok == 0 {
		t.Fatalf("helper %s: bad token in %q", h.Label, f)
	}
	return tok
}

// thRWLocked sends cmd and expects "locked OWNERS | MESSAGE" naming each
// of want (HOST/PID).
func thRWLocked(t testing.TB, h *Helper, cmd string, want ...string) {
	t.Helper()
	f := thRWSend(t, h, cmd)
	if f[0] != "locked" || len(f) < 2 {
		t.Fatalf("helper %s: %q answered %q, want it refused (ErrLocked)\n%s", h.Label, cmd, f, h.describe())
	}
	owners := strings.Split(f[1], ",")
	for _, w := range want {
		if !slicesContains(owners, w) {
			t.Errorf("helper %s: %q refused naming %q; want it to name %s", h.Label, cmd, strings.Join(f[1:], " "), w)
		}
	}
}

func slicesContains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

func thRWReleased(t testing.TB, h *Helper, cmd string) {
	t.Helper()
	if f := thRWSend(t, h, cmd); f[0] != "released" {
		t.Fatalf("helper %s: %q answered %q, want released\n%s", h.Label, cmd, f, h.describe())
	}
}

// thSharedAcrossHosts: readers on both hosts hold together; a host-B
// writer is refused while they do, naming both, and gets the lock, with a
// greater token, once they release; a host-A reader is then refused, and
// waits until the writer releases.
func thSharedAcrossHosts(t *testing.T, k Kind) {
	c := sshfstest.Start(t, sshfstest.Options{})
	hostA := thHostname(t)
	pa, pb, _ := thPaths(c, "x.lock")
	start := func(label string, onB bool) (*Helper, string) {
		cmd, p, host := c.CommandA, pa, hostA
		if onB {
			cmd, p, host = c.CommandB, pb, c.HostB
		}
		h := thStart(t, label, cmd, k, HelperSpec{Role: RoleRW, Path: p})
		pid, _ := procReady(t, h)
		return h, host + "/" + strconv.Itoa(pid)
	}
	ra, idRA := start("a-reader", false)
	rb, idRB := start("b-reader", true)
	wb, idWB := start("b-writer", true)

	tokRA := thRWHeld(t, ra, "rlock")
	tokRB := thRWHeld(t, rb, "rlock") // both hold now: neither has released
	t.Logf("host-A reader token %d, host-B reader token %d, held together", tokRA, tokRB)
	thRWLocked(t, wb, "trylock", idRA, idRB)
	// Nor does host A's reader get a second shared hold refused: readers
	// share.
	tokRA2 := thRWHeld(t, ra, "tryrlock")
	thRWReleased(t, ra, "runlock")
	thRWReleased(t, ra, "runlock")
	thRWLocked(t, wb, "trylock", idRB)
	thRWReleased(t, rb, "runlock")

	tokW := thRWHeld(t, wb, "lock")
	for _, tr := range []uint64{tokRA, tokRB, tokRA2} {
		if tokW <= tr {
			t.Errorf("host-B writer's token %d, want > every reader's (%d, %d, %d)", tokW, tokRA, tokRB, tokRA2)
			break
		}
	}
	thRWLocked(t, ra, "tryrlock", idWB)
	// A waiting host-A reader gets in once the writer releases.
	ra.Send(t, "rlock")
	thRWReleased(t, wb, "unlock")
	f := strings.Fields(ra.Next(t))
	if len(f) != 2 || f[0] != "held" {
		t.Fatalf("host-A reader waiting for the writer: %q, want held TOKEN\n%s", f, ra.describe())
	}
	if tok, _ := strconv.ParseUint(f[1], 10, 64); tok <= tokW {
		t.Errorf("host-A reader after the writer has token %d, want > %d", tok, tokW)
	}
	thRWReleased(t, ra, "runlock")
	for _, h := range []*Helper{ra, rb, wb} {
		h.CloseStdin()
		h.WaitOK(t)
		if p := h.Pending(); len(p) > 0 {
			t.Errorf("helper %s said more: %q", h.Label, p)
		}
	}
}

// thCLIAcrossHosts: the dotlock command excludes across hosts, exclusive
// and shared.
func thCLIAcrossHosts(t *testing.T) {
	c := sshfstest.Start(t, sshfstest.Options{}) // first: it says why it cannot run
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build dotlock: %v", err)
	}
	bin := filepath.Join(testdir.New(t), "dotlock")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/dotlock/dotlock/cmd/dotlock").CombinedOutput(); err != nil {
		t.Fatalf("go build dotlock: %v\n%s", err, out)
	}
	pa, pb, _ := thPaths(c, "x.lock")
	// run runs a dotlock that should end by itself and returns its exit code.
	run := func(cmd *exec.Cmd) int {
		t.Helper()
		type result struct {
			out []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := cmd.CombinedOutput()
			done <- result{out, err}
		}()
		select {
		case r := <-done:
			var ee *exec.ExitError
			switch {
			case r.err == nil:
				return 0
			case errors.As(r.err, &ee) && ee.Exited():
				t.Logf("%q: exit %d: %s", cmd.Args[len(cmd.Args)-4:], ee.ExitCode(), strings.TrimSpace(string(r.out)))
				return ee.ExitCode()
			default:
				t.Fatalf("%q: %v\n%s", cmd.Args, r.err, r.out)
			}
		case <-time.After(HelperTimeout):
			t.Fatalf("%q did not end within %v", cmd.Args, HelperTimeout)
		}
		return -1
	}
	// hold starts a dotlock that holds until its stdin closes.
	hold := func(label string, cmd *exec.Cmd) *Helper {
		t.Helper()
		h := StartHelper(t, label, cmd)
		if f := h.Next(t); f != "held" {
			t.Fatalf("%s: %q, want held\n%s", label, f, h.describe())
		}
		return h
	}
	const script = "echo held; read line || :"

	a := hold("a-dotlock", c.CommandA(bin, pa, "sh", "-c", script))
	if code := run(c.CommandB(bin, "-n", pb, "true")); code != 1 {
		t.Errorf("host B's dotlock -n while host A holds: exit %d, want 1 (conflict)", code)
	}
	a.CloseStdin()
	a.WaitOK(t)
	if code := run(c.CommandB(bin, "-n", pb, "true")); code != 0 {
		t.Errorf("host B's dotlock -n after host A's command ended: exit %d, want 0", code)
	}

	sa := hold("a-dotlock-s", c.CommandA(bin, "-s", pa, "sh", "-c", script))
	sb := hold("b-dotlock-s", c.CommandB(bin, "-s", pb, "sh", "-c", script)) // both hold at once
	if code := run(c.CommandA(bin, "-x", "-n", pa, "true")); code != 1 {
		t.Errorf("host A's dotlock -x -n while both hosts hold shared: exit %d, want 1", code)
	}
	if code := run(c.CommandB(bin, "-x", "-n", pb, "true")); code != 1 {
		t.Errorf("host B's dotlock -x -n while both hosts hold shared: exit %d, want 1", code)
	}
	sa.CloseStdin()
	sb.CloseStdin()
	sa.WaitOK(t)
	sb.WaitOK(t)
	if code := run(c.CommandA(bin, "-x", "-n", pa, "true")); code != 0 {
		t.Errorf("host A's dotlock -x -n after the shared holders ended: exit %d, want 0", code)
	}
}
