//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

func init() {
	// A process group of their own: were they in the test's, and that the
	// foreground group of a terminal, dotlock would take a SIGINT for the
	// keyboard's and rightly not pass it on.
	testProcAttr = func() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
}

// holdLock starts a dotlock run that holds lock until its stdin is closed,
// and returns once it holds.
func holdLock(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	args = append(args, "sh", "-c", "echo in; read x")
	p := startDotlock(t, dir, args...)
	p.out.wait(t, "holder", "in")
	return p
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// Two runs on one path: the second waits (saying for whom) and runs its
// command only after the first command ended.
func TestExclusionBetweenRuns(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	a := startDotlock(t, dir, lock, "sh", "-c", `echo "start A" >> log; echo in; read x; echo "end A" >> log`)
	a.out.wait(t, "A", "in")
	dotlock(t, dir, "-n", lock, "true").want(t, 1, "-n while A holds")

	b := startDotlock(t, dir, "-v", lock, "sh", "-c", `echo "start B" >> log; echo "end B" >> log; echo in`)
	line := b.err.wait(t, "B", "waiting for "+lock)
	if want := fmt.Sprintf("held by pid %d on ", a.pid()); !strings.Contains(line, want) || !strings.Contains(line, " since ") {
		t.Errorf("B's waiting line %q does not say %q ... since", line, want)
	}
	if got := readFile(t, filepath.Join(dir, "log")); got != "start A\n" {
		t.Fatalf("B's command ran while A held the lock: log %q", got)
	}
	a.closeStdin()
	if code := a.finish(); code != 0 {
		t.Fatalf("A: exit %d: %s", code, a.err.text())
	}
	b.out.wait(t, "B", "in")
	if code := b.finish(); code != 0 {
		t.Fatalf("B: exit %d: %s", code, b.err.text())
	}
	b.out.wait(t, "B", "dotlock: getting lock took ")
	if got, want := readFile(t, filepath.Join(dir, "log")), "start A\nend A\nstart B\nend B\n"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
	dotlock(t, dir, "--status", lock).want(t, 1, "status after both")
}

// -s runs hold together; they exclude -x both ways; a waiting -x stops new
// readers until it has had its turn.
func TestSharedOverlapAndExcludeExclusive(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	s1 := holdLock(t, dir, "-s", lock)
	s2 := holdLock(t, dir, "-s", "-n", lock) // both hold now
	m, code := statusJSON(t, dir, lock)
	if code != 0 || m["mode"] != "shared" || len(m["holders"].([]any)) != 2 {
		t.Fatalf("status with two readers: exit %d, %v", code, m)
	}
	dotlock(t, dir, "-x", "-n", lock, "true").want(t, 1, "-x -n while two readers hold")
	dotlock(t, dir, "-w", "0.2", lock, "true").want(t, 1, "-w 0.2 while two readers hold")

	w := startDotlock(t, dir, "-v", lock, "sh", "-c", "echo writer in")
	w.err.wait(t, "writer", "waiting for "+lock)
	dotlock(t, dir, "-s", "-n", lock, "true").want(t, 1, "new reader while a writer waits")
	s1.closeStdin()
	s1.finish()
	if w.exited() {
		t.Fatalf("the writer finished while a reader still held: %s", w.err.text())
	}
	s2.closeStdin()
	s2.finish()
	w.out.wait(t, "writer", "writer in")
	if code := w.finish(); code != 0 {
		t.Fatalf("writer: exit %d: %s", code, w.err.text())
	}

	x := holdLock(t, dir, lock)
	dotlock(t, dir, "-s", "-n", lock, "true").want(t, 1, "-s -n while -x holds")
	x.closeStdin()
	x.finish()
	dotlock(t, dir, "-s", "-n", lock, "true").want(t, 0, "-s -n on a free lock")
}

// -n, -w and -E: the conflict code, the timeout, and that the command is
// not run.
func TestConflictCodes(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	h := holdLock(t, dir, lock)
	for _, c := range []struct {
		args    []string
		code    int
		atLeast time.Duration
	}{
		{[]string{"-n"}, 1, 0},
		{[]string{"--nonblock"}, 1, 0},
		{[]string{"-n", "-E", "7"}, 7, 0},
		{[]string{"-nE7"}, 7, 0},
		{[]string{"-xnE", "4"}, 4, 0},
		{[]string{"--nb", "--conflict-exit-code=9"}, 9, 0},
		{[]string{"--nonbl", "--conflict-exit-code", "9"}, 9, 0},
		{[]string{"-n", "-E", "0"}, 0, 0},
		{[]string{"-w", "0"}, 1, 0},
		{[]string{"-w", "0.3"}, 1, 300 * time.Millisecond},
		{[]string{"-w0.3", "-E", "5"}, 5, 300 * time.Millisecond},
		{[]string{"--timeout=0.3", "-E5"}, 5, 300 * time.Millisecond},
		{[]string{"--wait", "0.3"}, 1, 300 * time.Millisecond},
	} {
		args := append(append([]string{}, c.args...), lock, "sh", "-c", "echo ran")
		began := time.Now()
		r := dotlock(t, dir, args...).want(t, c.code, strings.Join(c.args, " "))
		if took := time.Since(began); took < c.atLeast {
			t.Errorf("%q gave up after %v, before its timeout %v", c.args, took, c.atLeast)
		}
		if strings.Contains(r.stdout, "ran") {
			t.Errorf("%q ran the command without the lock", c.args)
		}
	}
	// A wait that the holder's release ends.
	w := startDotlock(t, dir, "-v", "-w", "20", lock, "sh", "-c", "echo ran")
	w.err.wait(t, "waiter", "waiting for "+lock)
	h.closeStdin()
	h.finish()
	w.out.wait(t, "waiter", "ran")
	if code := w.finish(); code != 0 {
		t.Fatalf("-w 20: exit %d: %s", code, w.err.text())
	}
}

// The command's status is dotlock's: exit codes, 128+N for signal N, 69
// (flock's) for commands that cannot be run; the lock is free afterwards.
func TestExitStatusPassedThrough(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	if err := os.WriteFile(filepath.Join(dir, "notexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv []string
		code int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"-c", "exit 5"}, 5},
		{[]string{"--command", "exit 6"}, 6},
		{[]string{"sh", "-c", "kill -TERM $$"}, 128 + int(syscall.SIGTERM)},
		{[]string{"sh", "-c", "kill -KILL $$"}, 128 + int(syscall.SIGKILL)},
		{[]string{"sh", "-c", "kill -INT $$"}, 128 + int(syscall.SIGINT)},
		{[]string{"no-such-command-dotlock-test"}, 69},
		{[]string{"./no-such-file"}, 69},
		{[]string{"./notexec"}, 69},
		{[]string{dir}, 69},
	} {
		r := dotlock(t, dir, append([]string{lock}, c.argv...)...).want(t, c.code, strings.Join(c.argv, " "))
		if c.code == 69 && strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: want a one-line message, got %q", c.argv, r.stderr)
		}
		dotlock(t, dir, "--status", lock).want(t, 1, "status after "+strings.Join(c.argv, " "))
	}
	// The command is told its fencing token, which grows.
	t1 := dotlock(t, dir, lock, "sh", "-c", "echo $DOTLOCK_TOKEN").want(t, 0, "token").stdout
	t2 := dotlock(t, dir, lock, "sh", "-c", "echo $DOTLOCK_TOKEN").want(t, 0, "token").stdout
	n1, err1 := strconv.Atoi(strings.TrimSpace(t1))
	n2, err2 := strconv.Atoi(strings.TrimSpace(t2))
	if err1 != nil || err2 != nil || n2 <= n1 {
		t.Errorf("DOTLOCK_TOKEN %q then %q: want growing numbers", t1, t2)
	}
}

// processGone reports whether pid has exited (or is a zombie nobody reaped).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// SIGTERM (and SIGINT, SIGHUP) to dotlock reaches the command, dotlock waits
// for it, releases the lock and exits with the command's status.
func TestSignalsForwardedAndLockReleased(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		p := startDotlock(t, dir, lock, "sh", "-c", "echo $$; exec sleep 60")
		child, err := strconv.Atoi(p.out.wait(t, "command", ""))
		if err != nil {
			t.Fatal(err)
		}
		p.cmd.Process.Signal(sig)
		if code := p.finish(); code != 128+int(sig) {
			t.Fatalf("%v: exit %d, want %d: %s", sig, code, 128+int(sig), p.err.text())
		}
		if !processGone(child) {
			t.Fatalf("%v: the command (pid %d) still runs after dotlock exited", sig, child)
		}
		// Released, not merely reclaimable.
		dotlock(t, dir, "--status", lock).want(t, 1, fmt.Sprintf("status after %v", sig))
		dotlock(t, dir, "-n", lock, "true").want(t, 0, fmt.Sprintf("-n after %v", sig))
	}
	// A command that handles SIGTERM: its own status is dotlock's.
	p := startDotlock(t, dir, lock, "sh", "-c", `trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
	p.out.wait(t, "command", "ready")
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.out.wait(t, "command", "got-term")
	if code := p.finish(); code != 7 {
		t.Fatalf("trapping command: exit %d, want 7: %s", code, p.err.text())
	}
	dotlock(t, dir, "--status", lock).want(t, 1, "status after the trapping command")
	dotlock(t, dir, "-n", lock, "true").want(t, 0, "-n after the trapping command")
}

// SIGTERM to a dotlock that waits ends the wait: 128+15, and the command
// never runs; the holder keeps the lock.
func TestSIGTERMWhileWaiting(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	h := holdLock(t, dir, lock)
	w := startDotlock(t, dir, "-v", lock, "sh", "-c", "echo ran")
	w.err.wait(t, "waiter", "waiting for "+lock)
	w.cmd.Process.Signal(syscall.SIGTERM)
	if code := w.finish(); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("waiter: exit %d: %s", code, w.err.text())
	}
	if strings.Contains(w.out.text(), "ran") {
		t.Fatal("the waiter ran its command")
	}
	m, _ := statusJSON(t, dir, lock)
	if pid := firstHolder(t, m)["pid"]; pid != float64(h.pid()) {
		t.Fatalf("held by %v, want the holder %d", pid, h.pid())
	}
	h.closeStdin()
	h.finish()
}

// SIGKILL to dotlock leaves a lock whose holder is dead: status says so,
// and the next run takes it at once. On Linux the command is ended too.
func TestSIGKILLLeavesReclaimableLock(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	p := startDotlock(t, dir, lock, "sh", "-c", "echo $$; exec sleep 60 >/dev/null 2>&1")
	child, err := strconv.Atoi(p.out.wait(t, "command", ""))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Kill()
	p.wait()
	m, code := statusJSON(t, dir, lock)
	if code != 0 || m["held"] != true {
		t.Fatalf("status after SIGKILL: exit %d, %v", code, m)
	}
	hd := firstHolder(t, m)
	if hd["pid"] != float64(p.pid()) || hd["verdict"] != "dead" {
		t.Fatalf("status after SIGKILL: holder %v, want pid %d judged dead", hd, p.pid())
	}
	r := dotlock(t, dir, "-n", "-v", lock, "true").want(t, 0, "-n after SIGKILL")
	if !strings.Contains(r.stderr, fmt.Sprintf("removed the stale lock %s of pid %d", lock, p.pid())) {
		t.Errorf("-v did not say it broke the dead holder's lock: %q", r.stderr)
	}
	if runtimeLinux {
		eventually(t, "the command of a killed dotlock ends", func() bool { return processGone(child) })
	}
}

// keepers returns the PIDs of keeper processes for lock (Linux: /proc).
func keepers(lock string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 2 && args[1] == keeperCommand && strings.Contains(string(b), "\x00"+lock+"\x00") && !processGone(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitKeepersGone makes sure no keeper outlives its test.
func waitKeepersGone(t *testing.T, lock string) {
	t.Helper()
	if !runtimeLinux {
		return
	}
	eventually(t, "keepers of "+lock+" exit", func() bool { return len(keepers(lock)) == 0 })
}

// lock --pid $$ in one step, unlock in another: the lock is the shell's
// meanwhile (heartbeated by the keeper), and others cannot unlock it.
func TestLockPidAcrossSteps(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	t.Cleanup(func() { waitKeepersGone(t, lock) })
	sh := startProc(t, dir, []string{"L=" + lock}, "sh", "-c",
		`"$DOTLOCK" --lock --stale-after 0.4 --pid $$ "$L" || exit 9; echo "locked $$"; read x; "$DOTLOCK" -u "$L" || exit 8; echo unlocked; read x; exit 0`)
	line := sh.out.wait(t, "shell", "locked ")
	if want := fmt.Sprintf("locked %d", sh.pid()); line != want {
		t.Fatalf("shell said %q, want %q", line, want)
	}
	m, _ := statusJSON(t, dir, lock)
	hd := firstHolder(t, m)
	if hd["pid"] != float64(sh.pid()) || hd["verdict"] != "alive" {
		t.Fatalf("status: holder %v, want the shell %d, alive", hd, sh.pid())
	}
	dotlock(t, dir, "-n", lock, "true").want(t, 1, "-n while the shell holds")
	if runtimeLinux && len(keepers(lock)) != 1 {
		t.Fatalf("keepers for %s: %v, want one", lock, keepers(lock))
	}
	// The keeper heartbeats the shell's record (lease 0.4s: every 0.1s).
	beat0 := hd["heartbeat"].(float64)
	eventually(t, "the heartbeat advances", func() bool {
		m, _ := statusJSON(t, dir, lock)
		return firstHolder(t, m)["heartbeat"].(float64) != beat0
	})
	// Not the test's to unlock: it does not run under that shell.
	r := dotlock(t, dir, "-u", lock).want(t, 75, "unlock from outside the shell")
	if !strings.Contains(r.stderr, fmt.Sprintf("pid %d", sh.pid())) {
		t.Errorf("unlock's refusal does not name the holder: %q", r.stderr)
	}
	dotlock(t, dir, "-n", lock, "true").want(t, 1, "-n after a refused unlock")

	fmt.Fprintln(sh.stdin)
	sh.out.wait(t, "shell", "unlocked")
	dotlock(t, dir, "-n", lock, "true").want(t, 0, "-n after the shell's unlock")
	sh.closeStdin()
	if code := sh.finish(); code != 0 {
		t.Fatalf("shell: exit %d: %s", code, sh.err.text())
	}
	// unlock --pid works from anywhere on this host.
	sh2 := startProc(t, dir, []string{"L=" + lock}, "sh", "-c", `"$DOTLOCK" --lock -s --stale-after 0.4 --pid $$ "$L" || exit 9; echo locked; read x`)
	sh2.out.wait(t, "shell", "locked")
	m, _ = statusJSON(t, dir, lock)
	if m["mode"] != "shared" {
		t.Fatalf("lock -s: mode %v", m["mode"])
	}
	dotlock(t, dir, "-s", "-n", lock, "true").want(t, 0, "-s -n beside a shared lock --pid")
	dotlock(t, dir, "-n", lock, "true").want(t, 1, "-n beside a shared lock --pid")
	dotlock(t, dir, "-u", "--pid", strconv.Itoa(sh2.pid()), lock).want(t, 0, "unlock --pid")
	dotlock(t, dir, "-n", lock, "true").want(t, 0, "-n after unlock --pid")
	sh2.closeStdin()
	sh2.finish()
}

// A lock taken with lock --pid is reclaimed once that process is gone: at
// once by the next run, and by the keeper itself.
func TestLockPidReclaimedWhenShellGone(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	t.Cleanup(func() { waitKeepersGone(t, lock) })
	for _, byNextRun := range []bool{true, false} {
		sh := startProc(t, dir, []string{"L=" + lock}, "sh", "-c", `"$DOTLOCK" --lock --stale-after 0.4 --pid $$ "$L" || exit 9; echo locked; read x`)
		sh.out.wait(t, "shell", "locked")
		dotlock(t, dir, "-n", lock, "true").want(t, 1, "-n while the shell holds")
		sh.cmd.Process.Kill()
		sh.wait()
		if byNextRun {
			dotlock(t, dir, "-n", lock, "true").want(t, 0, "-n once the shell is gone")
			continue
		}
		eventually(t, "the keeper releases the lock of the dead shell", func() bool {
			return dotlock(t, dir, "--status", lock).code == 1
		})
		m, _ := statusJSON(t, dir, lock)
		if m["last_token"].(float64) < 2 {
			t.Fatalf("last_token %v after two holds", m["last_token"])
		}
	}
}

// status --json: one object with the documented fields.
func TestStatusJSON(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	m, code := statusJSON(t, dir, lock)
	if code != 1 || m["held"] != false || m["path"] != lock || len(m["holders"].([]any)) != 0 {
		t.Fatalf("free lock: exit %d, %v", code, m)
	}
	h := holdLock(t, dir, lock)
	r := dotlock(t, dir, "--status", "--json", lock).want(t, 0, "status --json, held")
	if strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "}\n") {
		t.Errorf("status --json: want one line with one object, got %q", r.stdout)
	}
	m, _ = statusJSON(t, dir, lock)
	for _, k := range []string{"path", "format", "held", "mode", "holders", "record_error", "last_token", "waiting", "breaking"} {
		if _, ok := m[k]; !ok {
			t.Errorf("status --json lacks %q: %v", k, m)
		}
	}
	if m["format"] != "dir" || m["mode"] != "exclusive" || m["held"] != true {
		t.Errorf("status --json: %v", m)
	}
	hd := firstHolder(t, m)
	for _, k := range []string{"pid", "host", "since", "token", "uuid", "mode", "heartbeat", "heartbeat_time", "heartbeat_age", "verdict", "reason", "started", "start_id", "boot_id", "pid_namespace"} {
		if _, ok := hd[k]; !ok {
			t.Errorf("status --json holder lacks %q: %v", k, hd)
		}
	}
	host, _ := os.Hostname()
	if hd["pid"] != float64(h.pid()) || hd["host"] != host || hd["verdict"] != "alive" || hd["token"].(float64) < 1 {
		t.Errorf("holder %v: want pid %d on %s, alive, a token", hd, h.pid(), host)
	}
	if since, err := time.Parse(time.RFC3339Nano, hd["since"].(string)); err != nil || time.Since(since) > time.Minute || time.Since(since) < -time.Minute {
		t.Errorf("since %v: %v", hd["since"], err)
	}
	if age := hd["heartbeat_age"].(float64); age < 0 || age > 60 {
		t.Errorf("heartbeat_age %v", age)
	}
	token := hd["token"].(float64)
	h.closeStdin()
	h.finish()
	m, code = statusJSON(t, dir, lock)
	if code != 1 || m["held"] != false || m["last_token"] != token {
		t.Fatalf("after release: exit %d, %v (want last_token %v)", code, m, token)
	}
}

// break refuses a live holder; --force removes it after saying whose (and
// the holder's run then ends with 75, lock lost); a dead holder's lock is
// broken.
func TestBreak(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	dotlock(t, dir, "--break", lock).want(t, 0, "break of a free lock")
	h := startDotlock(t, dir, "--stale-after", "0.4", lock, "sh", "-c", "echo in; read x")
	h.out.wait(t, "holder", "in")
	r := dotlock(t, dir, "--break", lock).want(t, 1, "break of a live holder")
	if !strings.Contains(r.stderr, fmt.Sprintf("pid %d", h.pid())) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("break's refusal: %q", r.stderr)
	}
	dotlock(t, dir, "--status", lock).want(t, 0, "status after a refused break")
	r = dotlock(t, dir, "--break", "--force", lock).want(t, 0, "break --force")
	if !strings.Contains(r.stderr, fmt.Sprintf("breaking %s by force: held by pid %d", lock, h.pid())) {
		t.Errorf("break --force did not say whose lock it removes: %q", r.stderr)
	}
	dotlock(t, dir, "--status", lock).want(t, 1, "status after break --force")
	h.err.wait(t, "holder", "lost the lock")
	h.closeStdin()
	if code := h.finish(); code != 75 {
		t.Fatalf("holder whose lock was broken: exit %d, want 75: %s", code, h.err.text())
	}
	// A dead holder's lock.
	d := startDotlock(t, dir, lock, "sh", "-c", "echo in; exec sleep 60 >/dev/null 2>&1")
	d.out.wait(t, "holder", "in")
	d.cmd.Process.Kill()
	d.wait()
	r = dotlock(t, dir, "--break", lock).want(t, 0, "break of a dead holder")
	if !strings.Contains(r.stderr, fmt.Sprintf("pid %d", d.pid())) {
		t.Errorf("break did not say whose lock it removed: %q", r.stderr)
	}
	dotlock(t, dir, "--status", lock).want(t, 1, "status after break")

	// A holder on another host (a record copied, its host renamed): judged
	// by its lease, which break watches.
	dotlock(t, dir, lock, "sh", "-c", `sed 's/^host: .*/host: elsewhere-dotlock-test/' "$DOTLOCK_PATH/owner" > remote.rec`).want(t, 0, "copy a record")
	rec, err := os.ReadFile(filepath.Join(dir, "remote.rec"))
	if err != nil || !strings.Contains(string(rec), "host: elsewhere-dotlock-test\n") {
		t.Fatalf("crafted record %q: %v", rec, err)
	}
	if err := os.Mkdir(lock, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lock, "owner"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := statusJSON(t, dir, lock)
	if v := firstHolder(t, m)["verdict"]; v != "remote" {
		t.Fatalf("verdict on a record from another host: %v", v)
	}
	dotlock(t, dir, "-n", lock, "true").want(t, 1, "-n against a remote holder")
	began := time.Now()
	r = dotlock(t, dir, "--break", "--stale-after", "0.5s", lock).want(t, 0, "break of a remote holder whose heartbeat is still")
	if took := time.Since(began); took < 500*time.Millisecond || !strings.Contains(r.stderr, "heartbeat unchanged") {
		t.Errorf("break of a remote holder after %v (lease 0.5s): %q", took, r.stderr)
	}
	dotlock(t, dir, "--status", lock).want(t, 1, "status after breaking the remote holder")
}

// Every usage error: one line on stderr, nothing on stdout, exit 64, and
// nothing created.
func TestUsageErrors(t *testing.T) {
	dir := testdir.New(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	for _, args := range [][]string{
		{},
		{"-q", "x", "true"},
		{"--frob", "x", "true"},
		{"--n", "x", "true"}, // ambiguous: --nonblock, --nb, --no-fork
		{"-w"},
		{"--timeout"},
		{"-w", "abc", "x", "true"},
		{"-w", "-1", "x", "true"},
		{"--timeout=NaN", "x", "true"},
		{"-E", "300", "x", "true"},
		{"-E", "x", "x", "true"},
		{"--nonblock=1", "x", "true"},
		{"--stale-after", "0", "x", "true"},
		{"--stale-after", "soon", "x", "true"},
		{"x"},
		{"x", "-c"},
		{"x", "-c", "true", "extra"},
		{"-c", "true", "x"},
		{"-c", "true"}, // -c before any path needs --fd
		{"--fd", "3"},
		{"--fd", "x", "true"},
		{"-s", "--file", "x", "true"},
		{"-F", "-o", "x", "true"},
		{"--start", "1", "x", "true"},
		{"--length", "1", "x", "true"},
		{"--pid", "1", "x", "true"},
		{"-u"},
		{"-u", "--pid", "x", "x"},
		{"", "true"},
		{"x/", "true"},
		{"status"},
		{"--status"},
		{"--status", "a", "b"},
		{"--status", "--bogus", "x"},
		{"--break"},
		{"--break", "--force=1", "x"},
		{"--lock"},
		{"--lock", "--pid"},
		{"--lock", "--pid", "abc", "x"},
		{"--lock", "--pid", "0", "x"},
		{"--lock", "--pid", deadPID, "x"},
		{"--lock", "x", "true"},
		{"--lock", "-s", "--file", "x"},
	} {
		r := dotlock(t, dir, args...)
		if r.code != 64 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "dotlock: ") {
			t.Errorf("dotlock %q: exit %d, stdout %q, stderr %q; want 64 and one line on stderr", args, r.code, r.stdout, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("usage errors left files: %v", ents)
	}
	r := dotlock(t, dir, "--help").want(t, 0, "--help")
	if !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("--help: %q", r.stdout)
	}
}

// Paths that cannot be locked: documented codes, one line each.
func TestLockPathErrors(t *testing.T) {
	dir := testdir.New(t)
	if err := os.Symlink("elsewhere", filepath.Join(dir, "link.lock")); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, strings.Repeat("n", 250))
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"-n", filepath.Join(dir, "no", "such", "x.dotlock"), "true"}, 66, "does not exist"},
		{[]string{"--status", filepath.Join(dir, "no", "x.dotlock")}, 66, "does not exist"},
		{[]string{"-n", filepath.Join(dir, "link.lock"), "true"}, 65, "symlink"},
		// Too long for the names derived from it; twice, since the first
		// run used to leave a lock file the second then blamed.
		{[]string{"-n", long, "true"}, 66, "too long"},
		{[]string{"-n", "--file", long, "true"}, 66, "too long"},
		{[]string{"-n", "--file", long, "true"}, 66, "too long"},
	} {
		r := dotlock(t, dir, c.args...).want(t, c.code, strings.Join(c.args, " "))
		if !strings.Contains(r.stderr, c.says) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: stderr %q, want one line saying %q", c.args, r.stderr, c.says)
		}
	}
	// Permission denied: a directory the user cannot write (as root, the
	// run is made as nobody).
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dotlockBin, "-n", filepath.Join(ro, "x.dotlock"), "true")
	if os.Geteuid() == 0 {
		os.Chmod(dir, 0o755)
		os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent: nobody may enter, not write
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	} else {
		os.Chmod(ro, 0o555)
	}
	cmd.Env = testEnv()
	out, err := cmd.CombinedOutput()
	if code := statusOf(cmd.ProcessState); code != 77 || !strings.Contains(string(out), "mkdir") || strings.Count(string(out), "\n") != 1 {
		t.Errorf("lock in a read-only directory: exit %d (%v), want 77 and one line about mkdir: %q", code, err, out)
	}
}

// --file: the O_EXCL format, exclusive only; the default format refuses a
// lock file and says why.
func TestFileFormat(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	h := holdLock(t, dir, "--file", lock)
	if st, err := os.Lstat(lock); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("--file lock: %v %v, want a regular file", st, err)
	}
	dotlock(t, dir, "-n", "--file", lock, "true").want(t, 1, "--file -n while held")
	r := dotlock(t, dir, "-n", lock, "true").want(t, 65, "directory format on a lock file")
	if !strings.Contains(r.stderr, "use --file") {
		t.Errorf("stderr %q", r.stderr)
	}
	m, _ := statusJSON(t, dir, lock)
	if m["format"] != "file" || firstHolder(t, m)["pid"] != float64(h.pid()) {
		t.Errorf("status of a lock file: %v", m)
	}
	dotlock(t, dir, "--break", lock).want(t, 1, "break of a live lock file")
	h.closeStdin()
	h.finish()
	dotlock(t, dir, "-n", "--file", lock, "true").want(t, 0, "--file -n when free")
}

// bash execs the last command of a -c string: unlock then runs as the very
// process the lock was taken for, and must still count as its holder.
func TestUnlockAsLastCommandOfShell(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	lock := filepath.Join(testdir.New(t), "x.dotlock")
	script := fmt.Sprintf("%q --lock %q && %q -u %q", dotlockBin, lock, dotlockBin, lock)
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bash -c %s: %v\n%s", script, err, out)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Fatalf("lock still there after unlock: %v", err)
	}
}
