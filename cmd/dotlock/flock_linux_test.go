package main

// flock's command line and idioms, unchanged but for the command's name
// (issue 16): argument lists flock reads its way, existing files and
// directories as lock paths, the descriptor forms.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/testdir"
)

// bash runs script with bash in dir ($DOTLOCK is the binary).
func bash(t *testing.T, dir, script string) result {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, testEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) || ctx.Err() != nil {
		t.Fatalf("bash -c %q: %v", script, err)
	}
	return result{statusOf(cmd.ProcessState), out.String(), errb.String()}
}

// An argument list flock accepts means what it means to flock: a lock
// file named lock, status, break or unlock, and a command.
func TestFlockGrammarNoSubcommands(t *testing.T) {
	dir := testdir.New(t)
	for _, name := range []string{"lock", "status", "break", "unlock"} {
		r := dotlock(t, dir, name, "sh", "-c", "echo ran under $DOTLOCK_PATH").want(t, 0, name+" sh -c ...")
		if want := "ran under " + filepath.Join(dir, name+".dotlock") + "\n"; r.stdout != want {
			t.Errorf("dotlock %s sh: stdout %q, want %q", name, r.stdout, want)
		}
		if st, err := os.Lstat(filepath.Join(dir, name)); err != nil || !st.Mode().IsRegular() {
			t.Errorf("dotlock %s sh: ./%s is %v, %v; want the file flock would make", name, name, st, err)
		}
	}
	dotlock(t, dir, "status", "true").want(t, 0, "dotlock status true")
	// flock lock make: make, run under the lock ./lock.
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "make"), []byte("#!/bin/sh\necho made under $DOTLOCK_PATH\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r0 := bash(t, dir, `PATH="$PWD/bin:$PATH" "$DOTLOCK" lock make`).want(t, 0, "dotlock lock make")
	if want := "made under " + filepath.Join(dir, "lock.dotlock") + "\n"; r0.stdout != want {
		t.Errorf("dotlock lock make: stdout %q, want %q", r0.stdout, want)
	}
	r := dotlock(t, dir, "lock", "make-no-such-command").want(t, 69, "dotlock lock COMMAND-NOT-FOUND")
	if !strings.Contains(r.stderr, "failed to execute make-no-such-command") {
		t.Errorf("stderr %q", r.stderr)
	}
	// dotlock's own operations: options flock does not have.
	dotlock(t, dir, "--status", "lock").want(t, 1, "--status of a free lock")
	h := holdLock(t, dir, "lock")
	dotlock(t, dir, "--status", "lock").want(t, 0, "--status while held")
	dotlock(t, dir, "-n", "lock", "true").want(t, 1, "-n while held")
	dotlock(t, dir, "--break", "lock").want(t, 1, "--break of a live holder")
	h.closeStdin()
	h.finish()
	// Abbreviations flock reads as its options mean those here too.
	dotlock(t, dir, "--sta", "1", "lock", "true").want(t, 64, "--sta: flock's --start, refused")
	dotlock(t, dir, "--nonb", "lock", "true").want(t, 0, "--nonb: --nonblocking")
}

// snapshot is every entry under root: type, mode, size, mtime, content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		v := fmt.Sprintf("%v %d %v", st.Mode(), st.Size(), st.ModTime().UnixNano())
		if st.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: %s changed: %q, was %q", what, p, after[p], v)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

// An existing directory or data file given as the lock path is never
// changed, past every grace period (a holder killed, its lock taken over;
// a holder of another host's lease lapsed): its lock is beside it.
func TestExistingObjectsNeverChange(t *testing.T) {
	dir := testdir.New(t)
	objs := filepath.Join(dir, "objs")
	d, data, empty, emptyDir := filepath.Join(objs, "d"), filepath.Join(objs, "data"), filepath.Join(objs, "empty"), filepath.Join(objs, "emptydir")
	for _, p := range []string{filepath.Join(d, "sub"), emptyDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range map[string]string{filepath.Join(d, "a"): "alpha", filepath.Join(d, "sub", "b"): "beta", data: "data\n", empty: ""} {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objects := func() map[string]string {
		m := map[string]string{}
		for _, o := range []string{d, data, empty, emptyDir} {
			for p, v := range snapshot(t, o) {
				m[p] = v
			}
		}
		return m
	}
	before := objects()
	grace := lockcore.DefaultGrace
	for _, obj := range []string{d, data, empty, emptyDir} {
		t.Run(filepath.Base(obj), func(t *testing.T) {
			t.Parallel()
			// A holder killed: its lock is taken over, beside the object.
			k := startDotlock(t, dir, "--stale-after", "1s", obj, "sh", "-c", "echo in; exec sleep 60 >/dev/null 2>&1")
			k.out.wait(t, "holder", "in")
			k.cmd.Process.Kill()
			k.wait()
			h := holdLock(t, dir, "--stale-after", "1s", obj)
			dotlock(t, dir, "-n", obj, "true").want(t, 1, "-n while held")
			// A waiter past the grace period and the lease.
			dotlock(t, dir, "-w", (grace+2*time.Second).String(), obj, "true").want(t, 1, "-w past the grace period")
			h.closeStdin()
			h.finish()
			r := dotlock(t, dir, "--status", obj).want(t, 1, "status when free")
			if !strings.Contains(r.stdout, obj+".dotlock") {
				t.Errorf("status names %q, want the companion %s.dotlock", r.stdout, obj)
			}
		})
	}
	t.Cleanup(func() { sameSnapshot(t, "after the runs", before, objects()) })
}

// The descriptor idioms of flock(1)'s man page, on one host.
func TestFlockFDIdioms(t *testing.T) {
	dir := testdir.New(t)
	// ( flock -n 9 || exit 1; ... ) 9>FILE: one subshell inside at a time.
	in := startProc(t, dir, nil, "bash", "-c", `( "$DOTLOCK" -n 9 || exit 1; echo in; read x; echo out ) 9>file`)
	in.out.wait(t, "first subshell", "in")
	bash(t, dir, `( "$DOTLOCK" -n 9 || exit 1; echo in ) 9>file`).want(t, 1, "second subshell while the first is inside")
	bash(t, dir, `( "$DOTLOCK" -n 9 ) 9>file`).want(t, 1, "its last command (exec'd by bash), while the first is inside")
	dotlock(t, dir, "-n", "file", "true").want(t, 1, "the path form on the same file")
	in.closeStdin()
	if code := in.finish(); code != 0 {
		t.Fatalf("first subshell: exit %d", code)
	}
	// Released when the subshell exits (by its keeper, or by the next
	// locker, which finds the subshell gone: -w for the moment between).
	bash(t, dir, `( "$DOTLOCK" -w 5 9 || exit 1; echo in ) 9>file`).want(t, 0, "a subshell after the first exited")

	// exec 9>FILE; flock 9; ...; flock -u 9; and exec 9>&-.
	r := bash(t, dir, `exec 9>file
		"$DOTLOCK" -w 5 9 || exit 1
		"$DOTLOCK" -n 9 || exit 2             # locked already: as flock on a locked descriptor
		( "$DOTLOCK" -n 9 ) 9>file && exit 3  # another open of the file: excluded
		( "$DOTLOCK" -n -E 7 9 ) 9>file; [ $? = 7 ] || exit 11
		( "$DOTLOCK" -w 0.2 -E 7 9 ) 9>file; [ $? = 7 ] || exit 12
		v=$("$DOTLOCK" --verbose 9) && [[ $v == "dotlock: getting lock took "*" seconds" ]] || exit 13
		"$DOTLOCK" -n file true && exit 4
		"$DOTLOCK" -u 9 || exit 5
		"$DOTLOCK" -n file true || exit 6
		"$DOTLOCK" -s 9 || exit 7
		"$DOTLOCK" -s -n file true || exit 8  # shared beside shared
		"$DOTLOCK" -n file true && exit 9
		exec 9>&-
		"$DOTLOCK" -w 5 file true || exit 10  # closed: released (by the keeper, at once)
		exit 0`)
	if r.code != 0 {
		t.Fatalf("exec 9>file script: exit %d: %s", r.code, r.stderr)
	}
	// --fd FD COMMAND, -o, and a descriptor on no file.
	bash(t, dir, `exec 9>file; "$DOTLOCK" --fd 9 -c '"$DOTLOCK" -n --fd 9 true'`).want(t, 0, "--fd: the command has the lock through FD")
	r = bash(t, dir, `exec 9>file; "$DOTLOCK" -o --fd 9 -c '"$DOTLOCK" -n --fd 9 true'`).want(t, 65, "-o: the command has no FD")
	if !strings.Contains(r.stderr, "9: Bad file descriptor") {
		t.Errorf("stderr %q", r.stderr)
	}
	bash(t, dir, `"$DOTLOCK" 7`).want(t, 65, "FD not open")
	r = bash(t, dir, `"$DOTLOCK" 9 9< <(true)`).want(t, 65, "FD on a pipe")
	if !strings.Contains(r.stderr, "not on a file") {
		t.Errorf("stderr %q", r.stderr)
	}
}

// flock(1)'s man page: a script that locks itself, with flock -> dotlock.
func TestFlockerBoilerplate(t *testing.T) {
	dir := testdir.New(t)
	script := filepath.Join(dir, "job.sh")
	body := `#!/bin/bash
[ "${FLOCKER}" != "$0" ] && exec env FLOCKER="$0" "$DOTLOCK" -en "$0" "$0" "$@" || :
echo "in $*"
read x
exit 0
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, script)
	first := startProc(t, dir, nil, script, "one")
	first.out.wait(t, "first run", "in one")
	second := exec.Command(script, "two")
	second.Dir, second.Env = dir, testEnv()
	out, _ := second.CombinedOutput()
	if code := statusOf(second.ProcessState); code != 1 || len(out) != 0 {
		t.Errorf("second run while the first holds: exit %d, output %q; want 1, nothing", code, out)
	}
	first.closeStdin()
	if code := first.finish(); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	third := exec.Command(script, "three")
	third.Dir, third.Env, third.Stdin = dir, testEnv(), strings.NewReader("\n")
	if out, err := third.CombinedOutput(); err != nil || string(out) != "in three\n" {
		t.Errorf("third run: %v, %q", err, out)
	}
	sameSnapshot(t, "the script", before, snapshot(t, script))
}
