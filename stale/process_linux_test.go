package stale_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/dotlock/dotlock/stale"
)

// waitZombie waits until the killed child pid has exited but is not reaped:
// waitid(WEXITED|WNOWAIT) returns once the child is a zombie and leaves it
// one. It then checks the state in /proc/PID/stat itself.
func waitZombie(t *testing.T, pid int) bool {
	t.Helper()
	const pPID = 1 // idtype_t P_PID
	done := make(chan error, 1)
	go func() {
		var info [128]byte // siginfo_t
		for {
			_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info)),
				syscall.WEXITED|syscall.WNOWAIT, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				done <- e
			} else {
				done <- nil
			}
			return
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waitid(%d, WNOWAIT): %v", pid, err)
		}
	case <-time.After(deadline):
		t.Fatalf("killed child %d has not exited after %v", pid, deadline)
	}
	if state := procState(t, pid); state != "Z" {
		t.Fatalf("/proc/%d/stat: state %q after waitid(WNOWAIT), want Z", pid, state)
	}
	return true
}

// procState reads a process's state from /proc/PID/stat, independently of
// package stale.
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return f[0]
}

func checkIdentityOS(t *testing.T, id stale.Identity) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !strings.HasPrefix(id.BootID, "boottime:") {
			t.Errorf("no boot_id file, BootID = %q, want boottime:...", id.BootID)
		}
	case err != nil:
		t.Fatal(err)
	default:
		if want := strings.TrimSpace(string(b)); id.BootID != want || want == "" {
			t.Errorf("BootID = %q, /proc/sys/kernel/random/boot_id = %q", id.BootID, want)
		}
	}
	if !strings.HasPrefix(id.PIDNS, "pid:[") || !strings.HasSuffix(id.PIDNS, "]") {
		t.Errorf("PIDNS = %q, want pid:[inode]", id.PIDNS)
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil && ns != id.PIDNS {
		t.Errorf("PIDNS = %q, /proc/self/ns/pid = %q", id.PIDNS, ns)
	}
}

// TestStartIDLinux: on Linux the StartID is the start time in clock ticks
// from /proc/PID/stat (field 22), which a command name with spaces and
// parentheses cannot shift.
func TestStartIDLinux(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	want := f[19]
	if _, err := strconv.ParseUint(want, 10, 64); err != nil {
		t.Fatalf("/proc/self/stat field 22 = %q", want)
	}
	if got := lookup(t, os.Getpid()).StartID; got != want {
		t.Errorf("StartID = %q, /proc/self/stat starttime = %q", got, want)
	}
}

// TestSystemProcessesOddName: the command name in /proc/PID/stat is in
// parentheses and may hold anything, here ") Z 1 2 (", which a parser
// splitting at the first ')' would read as a zombie.
func TestSystemProcessesOddName(t *testing.T) {
	const comm = "x) Z 1 2 (y" // under 16 bytes: the kernel keeps it whole
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(t.TempDir(), comm)
	copyFile(t, exe, odd)
	h := startHelperExe(t, odd)
	pid := h.pid()

	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%d (%s) ", pid, comm)
	if !strings.HasPrefix(string(b), prefix) {
		t.Fatalf("/proc/%d/stat = %q, want prefix %q", pid, b, prefix)
	}
	f := strings.Fields(strings.TrimPrefix(string(b), prefix))
	if f[0] != "S" && f[0] != "R" {
		t.Fatalf("helper state %q, want running or sleeping", f[0])
	}
	p := lookup(t, pid)
	if !p.Exists || p.Zombie || p.StartID != f[19] {
		t.Errorf("Lookup(%d) named %q = %+v, want running with StartID %s", pid, comm, p, f[19])
	}

	h.cmd.Process.Kill()
	waitZombie(t, pid)
	if p := lookup(t, pid); !p.Zombie {
		t.Errorf("Lookup(zombie %d) named %q = %+v, want Zombie", pid, comm, p)
	}
	h.wait(t)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
