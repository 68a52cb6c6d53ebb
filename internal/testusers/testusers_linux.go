package testusers

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var mkMu sync.Mutex

// ensure returns user name, made with the shared group as a supplementary
// group if it does not exist. It skips t unless run as root.
func ensure(t testing.TB, name string) User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("multi-user test: needs root to make users (useradd) and run helpers as them")
	}
	mkMu.Lock()
	defer mkMu.Unlock()
	// -f: success if the group exists. Retried: another process may hold
	// the lock on /etc/group for a moment.
	if _, err := user.LookupGroup(Group); err != nil {
		run(t, "groupadd", "-f", "-r", Group)
	}
	g, err := user.LookupGroup(Group)
	if err != nil {
		t.Fatalf("group %s: %v", Group, err)
	}
	if _, err := user.Lookup(name); err != nil {
		run(t, "useradd", "-M", "-r", "-s", "/usr/sbin/nologin", "-G", Group, name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	sg, _ := strconv.ParseUint(g.Gid, 10, 32)
	return User{Name: name, UID: uint32(uid), GID: uint32(gid), Groups: []uint32{uint32(sg)}}
}

// run runs an admin command, tolerating "already exists" (exit 9) and
// retrying while /etc/passwd or /etc/group is locked by someone else.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for try := 0; try < 20; try++ {
		out, err = exec.Command(name, args...).CombinedOutput()
		var ee *exec.ExitError
		if err == nil || (errorsAs(err, &ee) && ee.ExitCode() == 9) {
			return
		}
		time.Sleep(100 * time.Millisecond) // the other process's edit of /etc/passwd
	}
	t.Fatalf("%s %v: %v\n%s", name, args, err, out)
}

func errorsAs(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// Dir makes a new directory under /tmp with mode (sticky and setgid bits
// included: 01777, 02775...) and group (a group name, or "" for root's),
// removed when t ends. /tmp is traversable by everyone, so the users can
// reach it.
func Dir(t testing.TB, mode fs.FileMode, group string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "dotlock-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // root: removes the users' files too
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			t.Fatal(err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		t.Fatal(err)
	}
	// os.Chmod maps ModeSticky and ModeSetgid to the Unix bits.
	if err := os.Chmod(dir, unixMode(mode)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unixMode accepts both Go's mode bits and raw Unix ones (01777, 02775).
func unixMode(m fs.FileMode) fs.FileMode {
	out := m & fs.ModePerm
	if m&(fs.ModeSticky|0o1000) != 0 {
		out |= fs.ModeSticky
	}
	if m&(fs.ModeSetgid|0o2000) != 0 {
		out |= fs.ModeSetgid
	}
	return out
}

// Command returns a command that runs name with args as u, with the
// umask given (through sh, which sets it and execs name), killed when ctx
// is done. Its process is in a process group of its own.
func Command(ctx context.Context, u User, umask int, name string, args ...string) *exec.Cmd {
	sh := fmt.Sprintf("umask %03o; exec \"$0\" \"$@\"", umask)
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", sh, name}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/", "LANG=C", "USER=" + u.Name}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups},
		Setpgid:    true,
	}
	return cmd
}

var protMu sync.Mutex

// Unprotect sets fs.protected_symlinks, protected_hardlinks,
// protected_regular and protected_fifos to 0 for t (as on many NFS servers
// and older systems, where dotlock must defend itself), and restores them
// when t ends. Tests using it must not run in parallel with each other.
func Unprotect(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to set fs.protected_* sysctls")
	}
	protMu.Lock()
	t.Cleanup(protMu.Unlock)
	for _, n := range []string{"protected_symlinks", "protected_hardlinks", "protected_regular", "protected_fifos"} {
		p := "/proc/sys/fs/" + n
		old, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("cannot read %s: %v", p, err)
		}
		if err := os.WriteFile(p, []byte("0\n"), 0); err != nil {
			t.Skipf("cannot set %s: %v", p, err)
		}
		t.Cleanup(func() { os.WriteFile(p, old, 0) })
	}
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary returns the dotlock command, built once per test process (with
// go build, into a directory every user can read, which is left in the
// system's temporary directory); the module's root is found from this
// source file. (cmd/dotlock's tests build their own, in TestMain.)
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..")
		dir, err := os.MkdirTemp("", "dotlock-users-bin-")
		if err != nil {
			build.err = err
			return
		}
		os.Chmod(dir, 0o755)
		build.bin = filepath.Join(dir, "dotlock")
		cmd := exec.Command("go", "build", "-o", build.bin, "./cmd/dotlock")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// Exe returns the running test binary, copied into a directory every user
// can read, so that a test can re-exec it as a helper running as another
// user (the go tool builds it in a directory only its user may enter).
func Exe(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(Dir(t, 0o755, ""), filepath.Base(self))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
