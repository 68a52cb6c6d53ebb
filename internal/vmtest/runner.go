package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Proc is a command started in a guest by Spawn.
type Proc struct {
	Host string
	c    *Cluster
	base string // control files' path on the host, without extension
}

// Spawn starts argv in guest host (as root, in /, stdin from /dev/null)
// and returns at once. Wait collects its output; Signal signals it.
func (c *Cluster) Spawn(host string, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("vmtest: Spawn: no command")
	}
	c.mu.Lock()
	c.seq++
	id := fmt.Sprintf("c%d", c.seq)
	_, ok := c.vms[host]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("vmtest: no host %q", host)
	}
	p := &Proc{Host: host, c: c, base: filepath.Join(c.Share, "ctl", host, id)}
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	script := fmt.Sprintf("echo $$ >%[1]s.pid.tmp && mv %[1]s.pid.tmp %[1]s.pid\ncd /\nexec %s\n", id, strings.Join(q, " "))
	// The runner picks up *.cmd only: write, then rename.
	if err := os.WriteFile(p.base+".tmp", []byte(script), 0o644); err != nil {
		return nil, err
	}
	return p, os.Rename(p.base+".tmp", p.base+".cmd")
}

// Run runs argv in guest host and returns its output and exit status
// (128+n if killed by signal n). After timeout it kills the command and
// returns an error.
func (c *Cluster) Run(host string, timeout time.Duration, argv ...string) (stdout, stderr string, exit int, err error) {
	p, err := c.Spawn(host, argv...)
	if err != nil {
		return "", "", -1, err
	}
	return p.Wait(timeout)
}

// Sh runs a shell script in guest host and fails t if it does not exit
// 0; it returns stdout.
func (c *Cluster) Sh(t testing.TB, host string, timeout time.Duration, script string) string {
	t.Helper()
	out, errOut, exit, err := c.Run(host, timeout, "sh", "-c", script)
	if err != nil || exit != 0 {
		t.Fatalf("vmtest: on %s: %s: exit %d, %v\nstdout: %s\nstderr: %s", host, script, exit, err, out, errOut)
	}
	return out
}

// Wait waits for the command to exit and returns its output. After
// timeout it sends SIGKILL and returns an error.
func (p *Proc) Wait(timeout time.Duration) (stdout, stderr string, exit int, err error) {
	done := func() bool { _, err := os.Stat(p.base + ".rc"); return err == nil }
	if err := p.c.poll(p.Host, time.Now().Add(timeout), done); err != nil {
		if err == errTimeout {
			_ = p.Signal("KILL")
		}
		return p.read(".out"), p.read(".err"), -1, fmt.Errorf("vmtest: on %s: %s: %v", p.Host, p.read(".sh"), err)
	}
	stdout, stderr = p.read(".out"), p.read(".err")
	exit, err = strconv.Atoi(strings.TrimSpace(p.read(".rc")))
	for _, ext := range []string{".sh", ".out", ".err", ".rc", ".pid"} {
		os.Remove(p.base + ext)
	}
	return stdout, stderr, exit, err
}

func (p *Proc) read(ext string) string {
	b, _ := os.ReadFile(p.base + ext)
	return string(b)
}

// PID returns the command's process ID in its guest, waiting up to 30 s
// for the runner to start it.
func (p *Proc) PID() (int, error) {
	pid := 0
	started := func() bool {
		n, err := strconv.Atoi(strings.TrimSpace(p.read(".pid")))
		pid = n
		return err == nil
	}
	if err := p.c.poll(p.Host, time.Now().Add(30*time.Second), started); err != nil {
		return 0, fmt.Errorf("vmtest: on %s: no PID: %v", p.Host, err)
	}
	return pid, nil
}

// Signal sends a signal, named as kill(1) names it ("KILL", "STOP",
// "CONT"), to the command in its guest.
func (p *Proc) Signal(sig string) error {
	pid, err := p.PID()
	if err != nil {
		return err
	}
	return p.c.check(p.Host, "kill", "-"+sig, strconv.Itoa(pid))
}

// SetClock sets guest host's clock, leaving the others' alone.
func (c *Cluster) SetClock(host string, t time.Time) error {
	return c.check(host, "date", "-u", "-s", "@"+strconv.FormatInt(t.Unix(), 10))
}

// SetLink cuts (up false) or restores a client's only network link; the
// guest keeps running and its runner keeps working (it does not use the
// network).
func (c *Cluster) SetLink(host string, up bool) error {
	state := map[bool]string{true: "up", false: "down"}[up]
	return c.check(host, "ip", "link", "set", "eth0", state)
}

// check runs argv on host, expecting exit 0 within 30 s.
func (c *Cluster) check(host string, argv ...string) error {
	_, errOut, exit, err := c.Run(host, 30*time.Second, argv...)
	if err == nil && exit != 0 {
		err = fmt.Errorf("vmtest: on %s: %s: exit %d: %s", host, strings.Join(argv, " "), exit, errOut)
	}
	return err
}

// Output returns what the command has written to stdout so far.
func (p *Proc) Output() string { return p.read(".out") }

// WaitOutput waits until the command's stdout holds s and returns the
// output so far; after timeout, or if the command exits first, it returns
// an error.
func (p *Proc) WaitOutput(s string, timeout time.Duration) (string, error) {
	out := ""
	seen := func() bool {
		out = p.read(".out")
		if strings.Contains(out, s) {
			return true
		}
		_, err := os.Stat(p.base + ".rc")
		return err == nil
	}
	if err := p.c.poll(p.Host, time.Now().Add(timeout), seen); err != nil {
		return out, fmt.Errorf("vmtest: on %s: waiting for %q: %v", p.Host, s, err)
	}
	if !strings.Contains(out, s) {
		return out, fmt.Errorf("vmtest: on %s: exited (%s) before writing %q; stderr: %s", p.Host, strings.TrimSpace(p.read(".rc")), s, p.read(".err"))
	}
	return out, nil
}

// Exited reports whether the command has exited.
func (p *Proc) Exited() bool {
	_, err := os.Stat(p.base + ".rc")
	return err == nil
}

// Stacks returns the kernel stacks of the command's threads and its open
// files, for a report on a command that hangs.
func (p *Proc) Stacks() string {
	pid, err := p.PID()
	if err != nil {
		return err.Error()
	}
	out, errOut, _, err := p.c.Run(p.Host, 30*time.Second, "sh", "-c",
		fmt.Sprintf("for t in /proc/%d/task/*; do echo \"== $t $(cat $t/comm) $(cat $t/wchan)\"; cat $t/stack; done; echo '== open files'; ls -l /proc/%d/fd", pid, pid))
	return fmt.Sprintf("%s%s%v", out, errOut, err)
}
