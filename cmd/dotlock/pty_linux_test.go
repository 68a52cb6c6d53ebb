package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (%v): cannot test the terminal progress line", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 200}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// On a terminal, a wait that passes a second shows one line saying on whom
// it waits, redrawn in place (never scrolled), and erased when it ends.
func TestProgressLineOnTerminal(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "x.dotlock")
	h := holdLock(t, dir, lock)
	master, slave := openPTY(t)
	defer master.Close()

	var mu sync.Mutex
	var buf strings.Builder
	changed := make(chan struct{}, 1)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			mu.Lock()
			buf.Write(b[:n])
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
			if err != nil {
				return // EIO once the last slave descriptor is closed
			}
		}
	}()
	screen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		timer := time.NewTimer(deadline)
		defer timer.Stop()
		for !cond(screen()) {
			select {
			case <-changed:
			case <-eof:
				if !cond(screen()) {
					t.Fatalf("terminal closed before %s: %q", what, screen())
				}
			case <-timer.C:
				t.Fatalf("no %s on the terminal within %v: %q", what, deadline, screen())
			}
		}
	}

	cmd := exec.Command(dotlockBin, lock, "sh", "-c", "echo ran")
	cmd.Dir, cmd.Env, cmd.Stderr = dir, testEnv(), slave
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	defer cmd.Process.Kill()
	want := fmt.Sprintf("\rdotlock: waiting for %s: held by pid %d on ", lock, h.pid())
	waitFor("progress line", func(s string) bool { return strings.Contains(s, want) })
	if took := time.Since(began); took < time.Second {
		t.Errorf("progress line shown after %v, before the wait passed a second", took)
	}
	waitFor("second drawing of the line", func(s string) bool { return strings.Count(s, want) >= 2 })
	if s := screen(); strings.Contains(s, "\n") {
		t.Fatalf("progress scrolled: %q", s)
	}
	h.closeStdin()
	h.finish()
	b := make([]byte, 64)
	n, _ := out.Read(b)
	if got := string(b[:n]); got != "ran\n" {
		t.Errorf("command output %q", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dotlock: %v: %q", err, screen())
	}
	waitFor("end of output", func(string) bool {
		select {
		case <-eof:
			return true
		default:
			return false
		}
	})
	s := screen()
	if strings.Contains(s, "\n") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("terminal after the wait: %q; want the line erased, nothing scrolled", s)
	}
}

// A SIGINT that reaches dotlock while it is the foreground of its terminal
// came from the keyboard, which sent it to the command as well: dotlock does
// not pass on a second one. A SIGTERM it still passes on.
func TestSIGINTFromTerminalNotDoubled(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "x.dotlock")
	master, slave := openPTY(t)
	defer master.Close()
	go io.Copy(io.Discard, master)
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd := exec.Command(dotlockBin, lock, "sh", "-c", `trap 'echo INT' INT; trap 'echo TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done`)
	cmd.Dir, cmd.Env = dir, testEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, outW, slave
	// Its own session, with the terminal as its controlling terminal, and
	// so the terminal's foreground process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	slave.Close()
	defer cmd.Process.Kill()
	out := newLineLog(outR)
	out.wait(t, "command", "ready")
	// In this order: dotlock handles (and would pass on) SIGINT first.
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Process.Signal(syscall.SIGTERM)
	out.wait(t, "command", "TERM")
	cmd.Wait()
	if code := statusOf(cmd.ProcessState); code != 3 {
		t.Errorf("exit %d, want the command's 3", code)
	}
	for _, l := range strings.Split(out.text(), "\n") {
		if l == "INT" {
			t.Fatalf("the command got dotlock's copy of a keyboard SIGINT: %q", out.text())
		}
	}
}
