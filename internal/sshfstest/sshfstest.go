// Package sshfstest is a test harness that simulates two hosts sharing one
// network filesystem on a single Linux machine.
//
// Start launches a private sshd on 127.0.0.1 and mounts one export directory
// twice with sshfs (MountA and MountB). The two mounts behave like two NFS
// clients of the same server: O_EXCL creation and mkdir are decided by the
// server and therefore exclude across the mounts, while flock(2) is purely
// local to each mount and does NOT exclude across them.
//
// Processes for "host A" are plain child processes of the test (CommandA).
// Processes for "host B" (CommandB) run inside one long-lived set of
// namespaces created by Start: their own UTS namespace (host name
// Cluster.HostB), their own PID namespace (so their PIDs are small numbers
// that collide with unrelated processes of host A) and their own mount
// namespace with a private /proc and a different boot ID
// (/proc/sys/kernel/random/boot_id reads Cluster.BootIDB). All host-B
// processes share that one PID namespace, so, as on a real machine, two
// host-B processes never have the same PID. CommandBootID starts a process
// that looks like host A after a reboot: same host name, same PIDs, but a
// different boot ID.
//
// Everything needs root, Linux, sshd, sshfs, fusermount and util-linux's
// unshare/nsenter/mount; Start skips the test (with the reason) otherwise.
// On Debian, .ci/setup-sshfs installs all of it.
//
// A typical test re-executes its own test binary as a helper on host B:
//
//	func TestHelperProcess(t *testing.T) {
//		if os.Getenv("MYPKG_HELPER") == "" {
//			return
//		}
//		// ... act as the helper, write results to stdout ...
//		os.Exit(0)
//	}
//
//	func TestTwoHosts(t *testing.T) {
//		c := sshfstest.Start(t, sshfstest.Options{})
//		cmd := c.CommandB(os.Args[0], "-test.run=^TestHelperProcess$", "--", filepath.Join(c.MountB, "lock"))
//		// GORACE=atexit_sleep_ms=0 spares each -race helper a 1 s sleep at exit.
//		cmd.Env = append(os.Environ(), "MYPKG_HELPER=hold", "GORACE=atexit_sleep_ms=0")
//		stdout, _ := cmd.StdoutPipe()
//		if err := cmd.Start(); err != nil {
//			t.Fatal(err)
//		}
//		// ... read from stdout until the helper says it holds the lock ...
//		pid, err := sshfstest.HostPID(cmd) // the helper itself, as seen from the test
//		if err != nil {
//			t.Fatal(err)
//		}
//		syscall.Kill(pid, syscall.SIGSTOP) // or SIGCONT, SIGKILL
//	}
package sshfstest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultHostB is the host name given to host-B processes when
// Options.HostB is empty.
const DefaultHostB = "dotlock-hostb"

// Options configures Start.
type Options struct {
	// Cached mounts both sshfs mounts with sshfs's default caching
	// (attribute, entry and directory caches of about 20 s), like NFS
	// clients with attribute caching: after host A changes a file's mtime
	// or removes it, host B keeps seeing the old mtime, or the removed file
	// (so that even its O_EXCL create of that name fails), for about 20 s
	// (21-22 s measured). Newly created files and new contents were seen
	// right away in measurements, but do not rely on that.
	//
	// When false (the default), both mounts are made with dir_cache=no,
	// attr_timeout=0, entry_timeout=0 and negative_timeout=0, so each mount
	// sees the other one's changes immediately, like NFS mounted with
	// noac/lookupcache=none.
	Cached bool

	// HostB is the host name of host B; DefaultHostB if empty. It must differ
	// from the real host name.
	HostB string
}

// Cluster is a running two-host simulation created by Start. Its fields are
// read-only. All paths are absolute and free of symbolic links.
type Cluster struct {
	// Export is the directory both mounts show (the server's view). Use it
	// for inspection only; lock code under test should use MountA or MountB.
	Export string
	// MountA is the sshfs mount point used by host A.
	MountA string
	// MountB is the sshfs mount point used by host B. Host-B processes can
	// also see MountA (and every other path); keeping to MountB is the test's
	// job.
	MountB string
	// HostB is the host name host-B processes see (gethostname, uname).
	HostB string
	// BootIDB is what /proc/sys/kernel/random/boot_id reads on host B.
	BootIDB string
	// Cached reports the Options.Cached the cluster was started with.
	Cached bool

	t       testing.TB
	dir     string // private temp directory holding keys, configs, export, mounts
	port    int    // sshd port on 127.0.0.1
	initPID int    // PID (in the test's namespace) of host B's namespace init
	state   *clusterState

	sh, nsenter, unshare, mount string

	mu   sync.Mutex
	seq  int
	cmds []*exec.Cmd
}

// Command kinds, recorded for HostPID.
const (
	kindA = iota
	kindB
	kindBootID
)

// Markers used as $0 of the wrapper shells, so HostPID can tell a wrapper
// apart from the target program.
const (
	markerOuterB = "sshfstest-hostb-outer"
	markerInnerB = "sshfstest-hostb"
	markerBootID = "sshfstest-bootid"
	markerInit   = "sshfstest-hostb-init"
)

type cmdInfo struct {
	kind     int
	launcher string // path of the program that replaces the wrapper (nsenter/unshare)
	shell    string

	mu  sync.Mutex
	pid int // cached result of HostPID
}

// registry maps *exec.Cmd created by a Cluster to its cmdInfo.
var registry sync.Map

// hostPIDTimeout bounds how long HostPID waits for the wrapper to exec the
// target program.
const hostPIDTimeout = 10 * time.Second

// CommandA returns a command that runs name with args as a process on host
// A: a plain child process of the test with the real host name, PID
// namespace and boot ID. It is equivalent to exec.Command.
func (c *Cluster) CommandA(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	c.register(cmd, &cmdInfo{kind: kindA})
	return cmd
}

// CommandB returns a command that runs name with args as a process on host
// B. The target program runs in host B's UTS, PID and mount namespaces:
// gethostname returns c.HostB, getpid returns a small number from host B's
// PID namespace (which may well be the PID of an unrelated host-A process,
// but never that of another live host-B process), /proc shows only host-B
// processes, /proc/sys/kernel/random/boot_id reads c.BootIDB and
// /etc/machine-id (if the machine has one) reads a random ID. The target is
// not PID 1 of host B, so signals behave normally; getppid returns 0, as
// its parent lives outside host B. It sees the same files as the test,
// including both mounts (and any mount made before Start).
//
// cmd.Env, cmd.Dir (the same path, entered inside host B's mount namespace),
// standard input/output/error and cmd.ExtraFiles reach the target.
//
// cmd.Process is a small wrapper in the test's namespaces (sh, replaced by
// nsenter, replaced by sh) whose child is the target; the wrapper exits with
// the target's exit status, or dies from the same signal that killed the
// target, so cmd.Wait reports the target's fate (a target exiting by itself
// with a status of 129 to 192 is indistinguishable, to the shell, from one
// killed by signal status-128, and is reported as such). Send signals to the PID
// returned by HostPID, not to cmd.Process: killing the wrapper leaves the
// target running (until the cluster is torn down). Stopping the target with
// SIGSTOP does not affect the wrapper. Processes the target itself forks
// stay in host B until they exit or the cluster is torn down.
//
// If name contains no path separator it is resolved with exec.LookPath (in
// the test's view, which host B shares); a failed lookup is reported by
// cmd.Start, as with exec.Command.
func (c *Cluster) CommandB(name string, args ...string) *exec.Cmd {
	target, lookErr := lookPath(name)
	const outer = `cd -P . || exit 127
nsenter=$1 pid=$2 shell=$3 inner=$4
shift 4
exec "$nsenter" --target "$pid" --uts --pid --mount --no-fork -- "$shell" -c "$inner" ` + markerInnerB + ` "$PWD" "$@"`
	const inner = `cd "$1" || exit 127
shift
"$@"
st=$?
if [ "$st" -gt 128 ] && [ "$st" -le 192 ]; then
	kill -"$((st - 128))" "$$" 2>/dev/null
fi
exit "$st"`
	argv := []string{"-c", outer, markerOuterB, c.nsenter, strconv.Itoa(c.initPID), c.sh, inner, target}
	argv = append(argv, args...)
	cmd := exec.Command(c.sh, argv...)
	cmd.Err = lookErr
	c.register(cmd, &cmdInfo{kind: kindB, launcher: c.nsenter, shell: c.sh})
	return cmd
}

// CommandBootID returns a command that runs name with args on host A after
// a simulated reboot: it has host A's host name and PID namespace (its PID
// is a normal host-A PID), but /proc/sys/kernel/random/boot_id reads bootID
// (a newline is appended if missing). NewBootID makes a random one. The
// process runs in a private mount namespace in which a file is bind-mounted
// over boot_id; cmd.Process is the target program itself.
func (c *Cluster) CommandBootID(bootID string, name string, args ...string) *exec.Cmd {
	target, lookErr := lookPath(name)
	c.mu.Lock()
	c.seq++
	file := filepath.Join(c.dir, fmt.Sprintf("boot_id.%d", c.seq))
	c.mu.Unlock()
	if !strings.HasSuffix(bootID, "\n") {
		bootID += "\n"
	}
	if err := os.WriteFile(file, []byte(bootID), 0o444); err != nil && lookErr == nil {
		lookErr = fmt.Errorf("sshfstest: writing fake boot ID: %w", err)
	}
	const script = `"$1" --bind -- "$2" /proc/sys/kernel/random/boot_id || exit 127
shift 2
exec "$@"`
	argv := []string{"--mount", "--propagation", "private", "--", c.sh, "-c", script, markerBootID, c.mount, file, target}
	argv = append(argv, args...)
	cmd := exec.Command(c.unshare, argv...)
	cmd.Err = lookErr
	c.register(cmd, &cmdInfo{kind: kindBootID, launcher: c.unshare, shell: c.sh})
	return cmd
}

func (c *Cluster) register(cmd *exec.Cmd, info *cmdInfo) {
	registry.Store(cmd, info)
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
}

func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return name, err
	}
	return p, nil
}

// NewBootID returns a random boot ID in the kernel's format (a version 4
// UUID without the trailing newline), for use with CommandBootID.
func NewBootID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// HostPID returns the PID, in the test's (host A's) PID namespace, of the
// target program of a started command created by a Cluster, so that a test
// can signal exactly that process (SIGSTOP, SIGCONT, SIGKILL, ...).
//
// For CommandA it is cmd.Process.Pid. For CommandB and CommandBootID it
// waits (up to 10 s) until the wrapper has exec'd the target program and
// returns the target's PID. It fails if cmd has not been started or exits
// before the target program runs. For commands not created by a Cluster it
// returns cmd.Process.Pid.
func HostPID(cmd *exec.Cmd) (int, error) {
	if cmd.Process == nil {
		return 0, errors.New("sshfstest: HostPID: command not started")
	}
	v, ok := registry.Load(cmd)
	if !ok {
		return cmd.Process.Pid, nil
	}
	info := v.(*cmdInfo)
	if info.kind == kindA {
		return cmd.Process.Pid, nil
	}
	info.mu.Lock()
	defer info.mu.Unlock()
	if info.pid != 0 {
		return info.pid, nil
	}
	pid, err := findTarget(cmd.Process.Pid, info)
	if err != nil {
		return 0, err
	}
	info.pid = pid
	return pid, nil
}

// findTarget polls /proc until the target program of a wrapper started as
// process pid is running and returns its PID.
func findTarget(pid int, info *cmdInfo) (int, error) {
	deadline := time.Now().Add(hostPIDTimeout)
	delay := 100 * time.Microsecond
	for {
		switch info.kind {
		case kindBootID:
			// unshare execs the wrapper shell, which execs the target.
			if argv, err := readCmdline(pid); err == nil && isTarget(argv, info, markerBootID) {
				return pid, nil
			}
		case kindB:
			// The wrapper stays; the target is its (only) child.
			kids, _ := children(pid)
			for _, k := range kids {
				if argv, err := readCmdline(k); err == nil && isTarget(argv, info, markerInnerB) {
					return k, nil
				}
			}
		}
		if st, err := procState(pid); err != nil || st == 'Z' || st == 'X' {
			return 0, fmt.Errorf("sshfstest: HostPID: wrapper process %d exited before its target program could be found (did the target already exit?)", pid)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("sshfstest: HostPID: target program of process %d did not start within %v", pid, hostPIDTimeout)
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// isTarget reports whether argv (a /proc cmdline) belongs to the target
// program rather than to one of the wrappers that precede it.
func isTarget(argv []string, info *cmdInfo, marker string) bool {
	if len(argv) == 0 { // zombie, kernel thread, or mid-exec
		return false
	}
	if argv[0] == info.launcher {
		return false
	}
	if argv[0] == info.shell && len(argv) > 3 && argv[1] == "-c" &&
		(argv[3] == marker || argv[3] == markerOuterB) {
		return false
	}
	return true
}

func readCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

// procStat returns the state and parent PID of process pid.
func procStat(pid int) (state byte, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err
}

func procState(pid int) (byte, error) {
	st, _, err := procStat(pid)
	return st, err
}

// children returns the PIDs of the children of pid. It uses
// /proc/PID/task/*/children when the kernel provides it
// (CONFIG_PROC_CHILDREN) and scans /proc otherwise.
func children(pid int) ([]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err == nil && len(tasks) > 0 {
		var kids []int
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, s := range strings.Fields(string(b)) {
				if k, err := strconv.Atoi(s); err == nil {
					kids = append(kids, k)
				}
			}
		}
		return kids, nil
	}
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, n := range names {
		k, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if _, ppid, err := procStat(k); err == nil && ppid == pid {
			kids = append(kids, k)
		}
	}
	return kids, nil
}
