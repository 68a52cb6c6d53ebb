package main

// flock's descriptor idioms and the FLOCKER boilerplate across the two
// sshfs "hosts" of internal/sshfstest (bash .ci/setup-sshfs installs
// it): one subshell per host on the same shared file, never both inside.

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/sshfstest"
)

// hostProc is a bash script running on one host, its stdout read by line.
type hostProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startOnHost(t *testing.T, command func(string, ...string) *exec.Cmd, env []string, script string) *hostProc {
	t.Helper()
	cmd := command("bash", "-c", script)
	cmd.Env = append(testEnv(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &hostProc{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

// next waits for the script's next line.
func (p *hostProc) next(t *testing.T, want string) {
	t.Helper()
	select {
	case l := <-p.lines:
		if l != want {
			t.Fatalf("line %q, want %q", l, want)
		}
	case <-time.After(deadline):
		t.Fatalf("no line %q within %v", want, deadline)
	}
}

// end closes the script's stdin and returns its exit status.
func (p *hostProc) end(t *testing.T) int {
	t.Helper()
	p.stdin.Close()
	for range p.lines {
	}
	p.cmd.Wait()
	return statusOf(p.cmd.ProcessState)
}

func onHost(t *testing.T, command func(string, ...string) *exec.Cmd, env []string, script string) int {
	t.Helper()
	p := startOnHost(t, command, env, script)
	return p.end(t)
}

func TestFlockIdiomsAcrossHosts(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	c := sshfstest.Start(t, sshfstest.Options{}) // skips, saying why, without sshfs
	fa, fb := []string{"F=" + filepath.Join(c.MountA, "file")}, []string{"F=" + filepath.Join(c.MountB, "file")}
	const sub = `( "$DOTLOCK" -n 9 || exit 1; echo in; read x; echo out ) 9>"$F"`

	t.Run("subshell", func(t *testing.T) {
		a := startOnHost(t, c.CommandA, fa, sub)
		a.next(t, "in")
		if code := onHost(t, c.CommandB, fb, sub); code != 1 {
			t.Errorf("host B's subshell while host A's is inside: exit %d, want 1", code)
		}
		if code := onHost(t, c.CommandB, fb, `"$DOTLOCK" -n "$F" true`); code != 1 {
			t.Errorf("host B's path form while host A's subshell is inside: exit %d, want 1", code)
		}
		if code := a.end(t); code != 0 {
			t.Fatalf("host A's subshell: exit %d", code)
		}
		// Released when A's subshell exits (its keeper sees it at once).
		b := startOnHost(t, c.CommandB, fb, `( "$DOTLOCK" -w 10 9 || exit 1; echo in; read x ) 9>"$F"`)
		b.next(t, "in")
		if code := onHost(t, c.CommandA, fa, sub); code != 1 {
			t.Errorf("host A's subshell while host B's is inside: exit %d, want 1", code)
		}
		b.end(t)
	})

	t.Run("exec", func(t *testing.T) {
		b := startOnHost(t, c.CommandB, fb, `exec 9>"$F"; "$DOTLOCK" -n 9 || exit 1; echo in; read x
			"$DOTLOCK" -u 9 || exit 2; echo unlocked; read x; "$DOTLOCK" -n 9 || exit 3; echo in; read x
			exec 9>&-; echo closed; read x`)
		b.next(t, "in")
		if code := onHost(t, c.CommandA, fa, sub); code != 1 {
			t.Errorf("host A while host B holds (exec 9>file): exit %d, want 1", code)
		}
		b.stdin.Write([]byte("\n"))
		b.next(t, "unlocked")
		if code := onHost(t, c.CommandA, fa, `( "$DOTLOCK" -n 9 ) 9>"$F"`); code != 0 {
			t.Errorf("host A after host B's -u 9: exit %d, want 0", code)
		}
		b.stdin.Write([]byte("\n"))
		b.next(t, "in")
		b.stdin.Write([]byte("\n"))
		b.next(t, "closed")
		if code := onHost(t, c.CommandA, fa, `( "$DOTLOCK" -w 10 9 ) 9>"$F"`); code != 0 {
			t.Errorf("host A after host B's exec 9>&-: exit %d, want 0", code)
		}
		b.end(t)
	})

	t.Run("FLOCKER", func(t *testing.T) {
		script := `#!/bin/bash
[ "${FLOCKER}" != "$0" ] && exec env FLOCKER="$0" "$DOTLOCK" -en "$0" "$0" "$@" || :
echo in
read x
exit 0
`
		if err := os.WriteFile(filepath.Join(c.Export, "job.sh"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		a := startOnHost(t, c.CommandA, nil, filepath.Join(c.MountA, "job.sh"))
		a.next(t, "in")
		r := onHost(t, c.CommandB, nil, filepath.Join(c.MountB, "job.sh"))
		if r != 1 {
			t.Errorf("the script on host B while it runs on host A: exit %d, want 1", r)
		}
		if code := a.end(t); code != 0 {
			t.Fatalf("the script on host A: exit %d", code)
		}
		b := startOnHost(t, c.CommandB, nil, filepath.Join(c.MountB, "job.sh"))
		b.next(t, "in")
		b.end(t)
		if got, _ := os.ReadFile(filepath.Join(c.Export, "job.sh")); !strings.EqualFold(string(got), script) {
			t.Errorf("the script changed: %q", got)
		}
	})
}
