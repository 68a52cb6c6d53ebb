package locktest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is the test side of the helper machinery.

// HelperTimeout bounds each wait for a helper's event. It is a failure
// deadline, never a synchronisation delay: waits end at the event.
var HelperTimeout = 30 * time.Second

// Helper is a running helper process, driven by a test.
type Helper struct {
	Label string
	Cmd   *exec.Cmd

	stdin  io.WriteCloser
	stderr *procSyncBuffer

	mu      sync.Mutex
	pid     int           // the PID to signal
	lines   []string      // stdout lines, except "tried"
	next    int           // first line not yet taken by Next/Expect
	tries   map[int]int   // "tried PID" counts
	eof     bool          // stdout closed
	changed chan struct{} // closed (and replaced) at each new line or exit
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // cmd.Wait's result, once exited is closed
}

type procSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *procSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *procSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// StartHelper starts cmd (built from HelperCmd; its Stdin, Stdout and
// Stderr must be unset) as a helper and returns it. The helper is killed,
// if still running, when the test ends. label names it in failures.
//
// The helper's PID (for Kill, Stop, Cont) is cmd.Process.Pid; a caller
// whose cmd is a wrapper around the helper sets the helper's own PID with
// SetPID.
func StartHelper(t testing.TB, label string, cmd *exec.Cmd) *Helper {
	t.Helper()
	h := &Helper{
		Label:   label,
		Cmd:     cmd,
		stderr:  &procSyncBuffer{},
		tries:   map[int]int{},
		changed: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	var r, w *os.File
	cmd, err := StartCmd(cmd, func(cmd *exec.Cmd) (func(), error) {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		h.stdin = stdin
		if r, w, err = os.Pipe(); err != nil {
			return nil, err
		}
		cmd.Stdout = w
		cmd.Stderr = h.stderr
		return func() { r.Close(); w.Close() }, nil
	})
	if err != nil {
		t.Fatalf("helper %s: starting %q: %v", label, cmd.Args, err)
	}
	h.Cmd = cmd
	w.Close()
	h.pid = cmd.Process.Pid
	go h.read(r)
	go func() {
		err := cmd.Wait()
		h.mu.Lock()
		h.waitErr = err
		close(h.exited)
		h.ringLocked()
		h.mu.Unlock()
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		select {
		case <-h.exited:
		default:
			h.kill()
			select {
			case <-h.exited:
			case <-time.After(HelperTimeout):
				t.Errorf("helper %s (pid %d) did not exit after SIGKILL", h.Label, h.PID())
			}
		}
		if t.Failed() {
			if s := h.stderr.String(); s != "" {
				t.Logf("helper %s stderr:\n%s", h.Label, s)
			}
		}
	})
	return h
}

// StartHelperSpec starts a helper playing s under k on this host.
func StartHelperSpec(t testing.TB, label string, k Kind, s HelperSpec) *Helper {
	t.Helper()
	return StartHelper(t, label, HelperCommand(k, s))
}

func (h *Helper) read(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		h.mu.Lock()
		if rest, ok := strings.CutPrefix(line, "tried "); ok {
			if pid, err := strconv.Atoi(rest); err == nil {
				h.tries[pid]++
			}
		} else {
			h.lines = append(h.lines, line)
		}
		h.ringLocked()
		h.mu.Unlock()
	}
	h.mu.Lock()
	h.eof = true
	h.ringLocked()
	h.mu.Unlock()
}

func (h *Helper) ringLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *Helper) changes() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// SetPID sets the PID that Kill, Stop and Cont signal.
func (h *Helper) SetPID(pid int) {
	h.mu.Lock()
	h.pid = pid
	h.mu.Unlock()
}

// PID returns the PID that Kill, Stop and Cont signal.
func (h *Helper) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pid
}

// Tries returns how many times the helper has reported judging a record
// naming pid (HelperSpec.ReportTries).
func (h *Helper) Tries(pid int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tries[pid]
}

// Pending returns the lines not yet taken by Next or Expect.
func (h *Helper) Pending() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines[h.next:]...)
}

// Exited reports whether the helper process has exited (and been reaped).
func (h *Helper) Exited() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}

// Stderr returns what the helper wrote to stderr so far.
func (h *Helper) Stderr() string { return h.stderr.String() }

func (h *Helper) describe() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := fmt.Sprintf("helper %s (pid %d): lines %q", h.Label, h.pid, h.lines)
	if h.eof {
		s += ", stdout closed"
	}
	if e := h.stderr.String(); e != "" {
		s += "\nstderr:\n" + e
	}
	return s
}

// Next returns the next stdout line (other than "tried" lines), waiting
// for it up to HelperTimeout. It fails the test if the helper closes
// stdout first or the deadline passes.
func (h *Helper) Next(t testing.TB) string {
	t.Helper()
	var line string
	ok := false
	WaitUntil(t, HelperTimeout, fmt.Sprintf("a line from helper %s", h.Label), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.next < len(h.lines) {
			line, ok = h.lines[h.next], true
			h.next++
			return true
		}
		return h.eof
	}, h)
	if !ok {
		t.Fatalf("helper %s closed stdout: %s", h.Label, h.describe())
	}
	return line
}

// Expect takes the next line and fails the test unless its first word is
// word. It returns the line's words.
func (h *Helper) Expect(t testing.TB, word string) []string {
	t.Helper()
	line := h.Next(t)
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != word {
		t.Fatalf("helper %s: got %q, want %q ...\n%s", h.Label, line, word, h.describe())
	}
	return f
}

// Send writes a line to the helper's stdin.
func (h *Helper) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		t.Fatalf("helper %s: writing %q: %v\n%s", h.Label, line, err, h.describe())
	}
}

// CloseStdin tells the helper to release what it holds and exit.
func (h *Helper) CloseStdin() { h.stdin.Close() }

// Wait waits for the helper to exit and returns cmd.Wait's error.
func (h *Helper) Wait(t testing.TB) error {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(HelperTimeout):
		t.Fatalf("helper %s did not exit within %v\n%s", h.Label, HelperTimeout, h.describe())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waitErr
}

// WaitOK waits for the helper to exit and fails the test unless it
// exited successfully.
func (h *Helper) WaitOK(t testing.TB) {
	t.Helper()
	if err := h.Wait(t); err != nil {
		t.Errorf("helper %s: %v\n%s", h.Label, err, h.describe())
	}
}

// Done waits for the helper to exit and close its stdout, and fails the
// test unless it exited successfully and printed nothing that was not
// taken (Next, Expect).
func (h *Helper) Done(t testing.TB) {
	t.Helper()
	WaitUntil(t, HelperTimeout, fmt.Sprintf("helper %s to exit", h.Label), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.eof && h.Exited()
	}, h)
	if err := h.Wait(t); err != nil {
		t.Fatalf("helper %s: %v\n%s", h.Label, err, h.describe())
	}
	if p := h.Pending(); len(p) > 0 {
		t.Fatalf("helper %s: unexpected lines %q before its exit\n%s", h.Label, p, h.describe())
	}
}

// Kill kills the helper with SIGKILL (TerminateProcess on Windows) and
// waits until it is gone and reaped.
func (h *Helper) Kill(t testing.TB) {
	t.Helper()
	if err := h.kill(); err != nil && !h.Exited() {
		t.Fatalf("helper %s: kill: %v", h.Label, err)
	}
	err := h.Wait(t)
	if err == nil {
		t.Fatalf("helper %s exited successfully before it was killed\n%s", h.Label, h.describe())
	}
}

func (h *Helper) kill() error {
	err := procKill(h.PID())
	if h.Cmd.Process != nil && h.Cmd.Process.Pid != h.PID() {
		h.Cmd.Process.Kill() // a wrapper: make sure it goes too
	}
	return err
}

// WaitUntil waits until cond() holds, re-evaluating it each time one of
// hs prints a line or exits. It fails the test after timeout, saying it
// was waiting for what. cond runs on the calling goroutine.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool, hs ...*Helper) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	cases := make([]reflect.SelectCase, len(hs)+1)
	cases[len(hs)] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)}
	for {
		// Take the channels before evaluating cond, so that no change
		// between the two goes unnoticed.
		for i, h := range hs {
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(h.changes())}
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == len(hs) {
			var b strings.Builder
			for _, h := range hs {
				b.WriteString("\n" + h.describe())
			}
			t.Fatalf("timed out after %v waiting for %s%s", timeout, what, b.String())
		}
	}
}

// StartCmd starts cmd after setup has given it its pipes; undo, from setup,
// closes what setup made if the start fails. Wine now and then fails to
// create a process under load ("Internal error"); a start that failed
// started nothing, so on Windows it is tried again, on a copy of cmd. It
// returns the command that started (or the last that failed).
func StartCmd(cmd *exec.Cmd, setup func(*exec.Cmd) (undo func(), err error)) (*exec.Cmd, error) {
	for try := 1; ; try++ {
		undo, err := setup(cmd)
		if err != nil {
			return cmd, err
		}
		if err = cmd.Start(); err == nil {
			return cmd, nil
		}
		undo()
		if runtime.GOOS != "windows" || try == 3 {
			return cmd, err
		}
		next := &exec.Cmd{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir,
			SysProcAttr: cmd.SysProcAttr, WaitDelay: cmd.WaitDelay}
		cmd = next
	}
}
