//go:build unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// secondUser returns the credentials of a system user made for the tests
// (created if need be), and makes dir a sticky world-writable directory it
// can reach, as /tmp is. It needs root.
func secondUser(t *testing.T, dir string) *syscall.Credential {
	t.Helper()
	const name = "dotlock-test-bob"
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", name).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 9) { // 9: it exists (made meanwhile)
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %s: uid %q gid %q", name, u.Uid, u.Gid)
	}
	// Chmod: umask would narrow a Mkdir mode. t.TempDir's parent is 0700.
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// lock --pid of a process this user may not signal (another user's: here
// PID 1, root's) is refused with 77 and creates nothing; lock --pid of the
// user's own process works.
func TestLockPidOfAnotherUsersProcess(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	var attr *syscall.SysProcAttr // the test's own user when it is not root
	switch {
	case os.Geteuid() == 0:
		if _, err := exec.LookPath("useradd"); err != nil {
			t.Skip("needs useradd to create a second user")
		}
		attr = &syscall.SysProcAttr{Setpgid: true, Credential: secondUser(t, dir)}
	case syscall.Kill(1, 0) != syscall.EPERM:
		t.Skip("needs root to create a second user (PID 1 is this user's)")
	}
	t.Cleanup(func() {
		// Without the refusal a keeper holds the lock for PID 1 for good.
		if _, err := os.Lstat(lock); err == nil {
			dotlock(t, dir, "-u", "--pid", "1", lock)
		}
		waitKeepersGone(t, lock)
	})

	cmd := exec.Command(dotlockBin, "--lock", "--pid", "1", lock)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, testEnv(), attr
	out, err := cmd.CombinedOutput()
	if code := statusOf(cmd.ProcessState); code != 77 || strings.Count(string(out), "\n") != 1 ||
		!strings.Contains(string(out), "--pid 1: permission denied") {
		t.Errorf("lock --pid 1 as another user: exit %d (%v), want 77 and one line saying permission denied: %q", code, err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the refused lock --pid 1 left %v", names)
	}

	// The user's own process: the lock is taken, and is its until it exits.
	sh := startProcAttr(t, attr, dir, []string{"L=" + lock}, "sh", "-c", `"$DOTLOCK" --lock --pid $$ "$L" || exit 9; echo locked; read x; exit 0`)
	sh.out.wait(t, "shell", "locked")
	if st, err := os.Lstat(lock); err != nil {
		t.Fatal(err)
	} else if attr != nil && st.Sys().(*syscall.Stat_t).Uid != attr.Credential.Uid {
		t.Fatalf("lock made by uid %d, not by the second user %d", st.Sys().(*syscall.Stat_t).Uid, attr.Credential.Uid)
	}
	m, code := statusJSON(t, dir, lock)
	if hd := firstHolder(t, m); code != 0 || hd["pid"] != float64(sh.pid()) || hd["verdict"] != "alive" {
		t.Fatalf("lock --pid of the user's own shell: exit %d, holder %v, want pid %d alive", code, hd, sh.pid())
	}
	sh.closeStdin()
	if code := sh.finish(); code != 0 {
		t.Fatalf("shell: exit %d: %s", code, sh.err.text())
	}
	eventually(t, "the keeper releases the lock of the exited shell", func() bool {
		return dotlock(t, dir, "--status", lock).code == 1
	})
}
