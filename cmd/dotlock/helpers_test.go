package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests drive the built binary as a user would: real processes, real
// signals, and no sleeps to synchronise — they wait for lines the processes
// print, or files and states they create, each with a deadline.

var dotlockBin string // the binary under test, built by TestMain

// testProcAttr, if set, gives the processes startProc starts their
// attributes (Unix: a process group of their own).
var testProcAttr func() *syscall.SysProcAttr

const deadline = 20 * time.Second // bound on every wait for an event

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if bin := os.Getenv("DOTLOCK_TEST_BINARY"); bin != "" {
		// Built beforehand: under Wine (.ci/test-windows) there is no go tool.
		dotlockBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "dotlock-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // tests run it as another user
	dotlockBin = filepath.Join(dir, "dotlock")
	if runtime.GOOS == "windows" {
		dotlockBin += ".exe"
	}
	args := []string{"build", "-o", dotlockBin}
	if raceEnabled {
		args = append(args, "-race") // the tool's goroutines are checked too
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	build := exec.Command(goTool, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 2
	}
	return m.Run()
}

// lineLog collects the lines of a stream and lets tests wait for one.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	eof     bool
	eofc    chan struct{} // closed at the end of the stream
	changed chan struct{}
}

func newLineLog(r io.Reader) *lineLog {
	l := &lineLog{changed: make(chan struct{}), eofc: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		l.mu.Lock()
		l.eof = true
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
		close(l.eofc)
	}()
	return l
}

// wait returns the first line containing substr, failing the test if none
// comes before the stream ends or the deadline passes.
func (l *lineLog) wait(t *testing.T, what, substr string) string {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for _, s := range l.lines {
			if strings.Contains(s, substr) {
				l.mu.Unlock()
				return s
			}
		}
		eof, ch := l.eof, l.changed
		all := strings.Join(l.lines, "\n")
		l.mu.Unlock()
		if eof {
			t.Fatalf("%s ended without a line containing %q; it printed:\n%s", what, substr, all)
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("no line containing %q from %s within %v; it printed:\n%s", substr, what, deadline, all)
		}
	}
}

func (l *lineLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// proc is a running process with its output lines and a stdin pipe.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *lineLog
	err    *lineLog
	done   chan struct{}
	status int
}

// startProc starts argv in dir with extra environment.
func startProc(t *testing.T, dir string, env []string, argv ...string) *proc {
	t.Helper()
	return startProcAttr(t, nil, dir, env, argv...)
}

// startProcAttr is startProc with the process's attributes (nil:
// testProcAttr's), e.g. another user's credentials.
func startProcAttr(t *testing.T, attr *syscall.SysProcAttr, dir string, env []string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(testEnv(), env...)
	cmd.SysProcAttr = attr
	if attr == nil && testProcAttr != nil {
		cmd.SysProcAttr = testProcAttr()
	}
	p := &proc{t: t, name: strings.Join(argv, " "), cmd: cmd, done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	// Pipes of our own (not StdoutPipe), so that Wait need not wait for
	// them: a process's children may hold them open after it exits.
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outR.Close(); errR.Close() })
	p.out, p.err = newLineLog(outR), newLineLog(errR)
	go func() {
		cmd.Wait()
		p.status = statusOf(cmd.ProcessState)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// startDotlock starts the binary with args in dir.
func startDotlock(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return startProc(t, dir, nil, append([]string{dotlockBin}, args...)...)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// wait waits for the process to exit and returns its status (128+N for
// signal N).
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.status
	case <-time.After(deadline):
		p.t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, deadline, p.err.text())
	}
	return -1
}

// finish waits for the process to exit and for the ends of its output
// streams (which its children may hold a little longer), and returns its
// status.
func (p *proc) finish() int {
	p.t.Helper()
	code := p.wait()
	for _, l := range []*lineLog{p.out, p.err} {
		select {
		case <-l.eofc:
		case <-time.After(deadline):
			p.t.Fatalf("%s: output still open %v after it exited", p.name, deadline)
		}
	}
	return code
}

// exited reports whether the process has exited, without waiting.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// closeStdin tells a command reading its stdin ("read x") to go on.
func (p *proc) closeStdin() { p.stdin.Close() }

func statusOf(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if n, ok := signalled(ps); ok {
		return 128 + n
	}
	return ps.ExitCode()
}

func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHELL=") && !strings.HasPrefix(kv, "DOTLOCK") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	// A race-built binary: no 1s sleep at exit, and an exit code no test
	// expects if it finds a race.
	return append(env, "SHELL=/bin/sh", "DOTLOCK="+dotlockBin, "GORACE=atexit_sleep_ms=0 exitcode=99")
}

// result is a finished run.
type result struct {
	code           int
	stdout, stderr string
}

// dotlock runs the binary with args in dir to completion.
func dotlock(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var cmd *exec.Cmd
	var out, errb bytes.Buffer
	var err error
	for try := 0; ; try++ {
		cmd = exec.CommandContext(ctx, dotlockBin, args...)
		cmd.Dir = dir
		cmd.Env = testEnv()
		out.Reset()
		errb.Reset()
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		// Wine's CreateProcess fails now and then under load with
		// ERROR_INTERNAL_ERROR, before dotlock runs at all.
		if cmd.Process == nil && runtime.GOOS == "windows" && try < 2 && err != nil && strings.Contains(err.Error(), "Internal error") {
			t.Logf("dotlock %q: %v; starting it again", args, err)
			continue
		}
		break
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("dotlock %q: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("dotlock %q did not finish within %v", args, deadline)
	}
	return result{statusOf(cmd.ProcessState), out.String(), errb.String()}
}

// want checks an exit code.
func (r result) want(t *testing.T, code int, what string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// jsonStatusOf runs status --json and decodes it.
func statusJSON(t *testing.T, dir, lock string) (map[string]any, int) {
	t.Helper()
	r := dotlock(t, dir, "--status", "--json", lock)
	if r.code != 0 && r.code != 1 {
		t.Fatalf("status --json: exit %d: %s", r.code, r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("status --json: %v: %q", err, r.stdout)
	}
	return m, r.code
}

// holder returns status --json's first holder.
func firstHolder(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	hs, _ := m["holders"].([]any)
	if len(hs) == 0 {
		t.Fatalf("status --json: no holders: %v", m)
	}
	return hs[0].(map[string]any)
}

// eventually polls cond (a cheap check of real state: a process table, a
// status) until it holds, failing after the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for d := time.Millisecond; !cond(); d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
		time.Sleep(d)
	}
}

const runtimeLinux = runtime.GOOS == "linux"
