package stale_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dotlock/dotlock/internal/testusers"
	"github.com/dotlock/dotlock/stale"
)

// A holder of another user's is alive to a judge on a host whose procfs
// hides other users' processes (hidepid=2, invisible: hardened systems,
// some multi-user servers). /proc/PID is missing there for the living
// too; judged gone, a live holder lost its lock to the first waiter of
// another user. The judge runs as a second user, in a mount namespace of
// its own with procfs mounted so, and looks up a root process that it
// cannot see, and one that is gone.
func TestHiddenProcessIsAlive(t *testing.T) {
	alice, _ := testusers.Two(t) // skips unless root
	holder := exec.Command("sleep", "300")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer holder.Process.Kill()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=hidepid",
		fmt.Sprintf("STALE_HIDEPID=%d,%d,%d,%d", holder.Process.Pid, gone.Process.Pid, alice.UID, alice.GID))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var got []string
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == "LOOKUP" {
			got = append(got, strings.Join(f[1:], " "))
		}
	}
	if len(got) == 1 && strings.HasPrefix(got[0], "skip") {
		t.Skipf("helper: %s", got[0])
	}
	want := []string{"holder exists=true", "gone exists=false"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("lookups by another user with hidepid=2: %q; want %q\n%s", got, want, out)
	}
}

// hidepidJudge is TestHiddenProcessIsAlive's judge, a helper process
// (helperEnv=hidepid): procfs mounted with hidepid=2 in its own mount
// namespace, then alice's IDs, then the lookups. arg is "holder PID,gone
// PID,UID,GID".
func hidepidJudge(arg string) int {
	var n [4]int
	for i, f := range strings.Split(arg, ",") {
		n[i], _ = strconv.Atoi(f)
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fail(err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", 0, "hidepid=2"); err != nil {
		fmt.Printf("LOOKUP skip: procfs with hidepid=2: %v\n", err)
		return 0
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fail(err)
	}
	if err := syscall.Setgid(n[3]); err != nil {
		return fail(err)
	}
	if err := syscall.Setuid(n[2]); err != nil {
		return fail(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(n[0])); !errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("LOOKUP skip: hidepid=2 does not hide root's process here (stat: %v)\n", err)
		return 0
	}
	for _, c := range []struct {
		name string
		pid  int
	}{{"holder", n[0]}, {"gone", n[1]}} {
		p, err := stale.SystemProcesses{}.Lookup(c.pid)
		if err != nil {
			return fail(err)
		}
		fmt.Printf("LOOKUP %s exists=%t\n", c.name, p.Exists)
	}
	return 0
}
