package sshfstest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeouts for the steps of Start and of the teardown. They are generous
// upper bounds for loaded CI machines; the steps normally take milliseconds.
const (
	sshdReadyTimeout  = 15 * time.Second
	mountReadyTimeout = 20 * time.Second
	hostBReadyTimeout = 10 * time.Second
	exitTimeout       = 10 * time.Second
	graceTimeout      = 5 * time.Second // for processes expected to exit by themselves
)

// daemon is a background process owned by a Cluster (sshd, sshfs, host B's
// namespace init). It runs in its own process group, which is killed as a
// whole, and receives SIGKILL if the test process dies first.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string // file receiving its stdout and stderr
	done chan struct{}
	err  error // valid after done is closed
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to timeout for the daemon to exit by itself.
func (d *daemon) waitExit(timeout time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill sends SIGKILL to the daemon's process group and waits for the daemon
// to exit. It reports an error if it does not exit in time.
func (d *daemon) kill() error {
	if !d.exited() {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	if !d.waitExit(exitTimeout) {
		return fmt.Errorf("%s (pid %d) did not exit within %v after SIGKILL", d.name, d.cmd.Process.Pid, exitTimeout)
	}
	return nil
}

// logTail returns the last part of the daemon's output.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 8 << 10
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	return s
}

func (d *daemon) status() string {
	if d.exited() {
		return fmt.Sprintf("exited: %v", d.err)
	}
	return "running"
}

// clusterState is the Linux-only part of a Cluster.
type clusterState struct {
	sshd    *daemon
	sshfs   []*daemon
	init    *daemon
	mounted []string
	daemons []*daemon
}

func start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("sshfstest: needs root (sshd, FUSE mounts and namespaces); euid is %d", os.Geteuid())
	}
	tools, missing := findTools()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = append(missing, "/dev/fuse ("+err.Error()+")")
	}
	if len(missing) > 0 {
		t.Skipf("sshfstest: missing %s (on Debian, run .ci/setup-sshfs as root)", strings.Join(missing, ", "))
	}

	began := time.Now()
	hostB := opt.HostB
	if hostB == "" {
		hostB = DefaultHostB
	}
	if hn, err := os.Hostname(); err == nil && hn == hostB {
		t.Fatalf("sshfstest: host B's name %q equals the real host name", hostB)
	}

	tmp, err := os.MkdirTemp("", "sshfstest-")
	if err != nil {
		t.Fatalf("sshfstest: %v", err)
	}
	dir, err := filepath.EvalSymlinks(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("sshfstest: %v", err)
	}
	c := &Cluster{
		Export:  filepath.Join(dir, "export"),
		MountA:  filepath.Join(dir, "mnt-a"),
		MountB:  filepath.Join(dir, "mnt-b"),
		HostB:   hostB,
		BootIDB: NewBootID(),
		Cached:  opt.Cached,
		t:       t,
		dir:     dir,
		sh:      tools["sh"],
		nsenter: tools["nsenter"],
		unshare: tools["unshare"],
		mount:   tools["mount"],
	}
	st := &clusterState{}
	c.state = st
	t.Cleanup(func() { c.teardown(st, tools) })

	for _, d := range []string{c.Export, c.MountA, c.MountB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("sshfstest: %v", err)
		}
	}

	// Throwaway keys.
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	clientKey := filepath.Join(dir, "id_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		out, err := exec.Command(tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", "sshfstest", "-f", k).CombinedOutput()
		if err != nil {
			t.Fatalf("sshfstest: ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatalf("sshfstest: %v", err)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		t.Fatalf("sshfstest: %v", err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshfstest: %v", err)
	}

	c.startSSHD(st, tools["sshd"], hostKey, authKeys)

	// Mount the export twice, concurrently.
	opts := []string{
		"IdentityFile=" + clientKey,
		"IdentitiesOnly=yes",
		"UserKnownHostsFile=/dev/null",
		"GlobalKnownHostsFile=/dev/null",
		"StrictHostKeyChecking=no",
		"BatchMode=yes",
		"LogLevel=ERROR",
		"port=" + strconv.Itoa(c.port),
	}
	if !opt.Cached {
		opts = append(opts, "dir_cache=no", "attr_timeout=0", "entry_timeout=0", "negative_timeout=0")
	}
	for _, m := range []struct{ name, dir string }{{"sshfs-a", c.MountA}, {"sshfs-b", c.MountB}} {
		d := c.spawn(st, m.name, tools["sshfs"],
			"-f", "-F", "/dev/null",
			"root@127.0.0.1:"+c.Export, m.dir,
			"-o", strings.Join(opts, ","))
		st.sshfs = append(st.sshfs, d)
	}
	for i, m := range []string{c.MountA, c.MountB} {
		c.waitMounted(st.sshfs[i], m)
		st.mounted = append(st.mounted, m)
	}

	c.startHostB(st)
	t.Logf("sshfstest: cluster ready in %v (sshd 127.0.0.1:%d, export %s, cached=%v, host B %q, init pid %d)",
		time.Since(began).Round(time.Millisecond), c.port, c.Export, c.Cached, c.HostB, c.initPID)
	return c
}

// findTools looks up the programs the cluster needs.
func findTools() (map[string]string, []string) {
	tools := map[string]string{}
	var missing []string
	look := func(key string, candidates ...string) {
		for _, name := range candidates {
			if strings.HasPrefix(name, "/") {
				if fi, err := os.Stat(name); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
					tools[key] = name
					return
				}
				continue
			}
			if p, err := exec.LookPath(name); err == nil {
				if abs, err := filepath.Abs(p); err == nil {
					p = abs
				}
				tools[key] = p
				return
			}
		}
		missing = append(missing, strings.Join(candidates, " or "))
	}
	// sshd must be started with an absolute path (it re-executes itself).
	look("sshd", "/usr/sbin/sshd", "sshd")
	look("ssh", "ssh")
	look("ssh-keygen", "ssh-keygen")
	look("sshfs", "sshfs")
	look("fusermount", "fusermount3", "fusermount")
	look("unshare", "unshare")
	look("nsenter", "nsenter")
	look("mount", "mount", "/usr/bin/mount", "/bin/mount")
	look("sh", "/bin/sh")
	look("sleep", "sleep")
	return tools, missing
}

// spawn starts a daemon in its own process group with output to a log file.
func (c *Cluster) spawn(st *clusterState, name, path string, args ...string) *daemon {
	c.t.Helper()
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		c.t.Fatalf("sshfstest: %v", err)
	}
	defer f.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("sshfstest: starting %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	st.daemons = append(st.daemons, d)
	return d
}

// startSSHD starts sshd on a free port of 127.0.0.1 and waits until it
// accepts connections. A port grabbed by someone else between choosing and
// binding it makes sshd exit; then another port is tried.
func (c *Cluster) startSSHD(st *clusterState, sshd, hostKey, authKeys string) {
	c.t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			c.t.Fatalf("sshfstest: choosing a port: %v", err)
		}
		conf := filepath.Join(c.dir, "sshd_config")
		cfg := strings.Join([]string{
			"ListenAddress 127.0.0.1",
			"Port " + strconv.Itoa(port),
			"HostKey " + hostKey,
			"AuthorizedKeysFile " + authKeys,
			"PidFile " + filepath.Join(c.dir, "sshd.pid"),
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"UsePAM no",
			"StrictModes no",
			"PermitRootLogin yes",
			"UseDNS no",
			"PrintMotd no",
			"X11Forwarding no",
			"AllowTcpForwarding no",
			"MaxStartups 100",
			"Subsystem sftp internal-sftp",
			"",
		}, "\n")
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			c.t.Fatalf("sshfstest: %v", err)
		}
		d := c.spawn(st, fmt.Sprintf("sshd-%d", attempt), sshd, "-D", "-e", "-f", conf)
		err = waitListening(d, port)
		if err == nil {
			st.sshd = d
			c.port = port
			return
		}
		lastErr = fmt.Errorf("%v\nsshd log:\n%s", err, d.logTail())
		if !d.exited() {
			break // running but not listening: retrying will not help
		}
	}
	c.t.Fatalf("sshfstest: sshd did not start: %v", lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls until something accepts TCP connections on
// 127.0.0.1:port, or d exits, or the deadline passes.
func waitListening(d *daemon, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(sshdReadyTimeout)
	delay := time.Millisecond
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			if d.exited() { // someone else owns the port
				return fmt.Errorf("sshd %s", d.status())
			}
			return nil
		}
		if d.exited() {
			return fmt.Errorf("sshd %s", d.status())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after %v: %v", addr, sshdReadyTimeout, err)
		}
		time.Sleep(delay)
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// waitMounted polls /proc/self/mountinfo until an sshfs mount appears at
// dir, failing the test if d exits or the deadline passes.
func (c *Cluster) waitMounted(d *daemon, dir string) {
	c.t.Helper()
	deadline := time.Now().Add(mountReadyTimeout)
	delay := time.Millisecond
	for {
		ok, err := isFuseMount(dir)
		if err != nil {
			c.t.Fatalf("sshfstest: %v", err)
		}
		if ok {
			return
		}
		if d.exited() {
			c.t.Fatalf("sshfstest: %s for %s %s before mounting; log:\n%s\nsshd log:\n%s",
				d.name, dir, d.status(), d.logTail(), c.sshdLog())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("sshfstest: %s not mounted after %v; %s log:\n%s\nsshd log:\n%s",
				dir, mountReadyTimeout, d.name, d.logTail(), c.sshdLog())
		}
		time.Sleep(delay)
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

func (c *Cluster) sshdLog() string {
	st := c.state
	if st == nil || st.sshd == nil {
		return "(none)"
	}
	return st.sshd.logTail()
}

// mountPoints returns the mount points and file system types of the test
// process's mount namespace, innermost last.
func mountPoints() ([][2]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superopts
		line := sc.Text()
		fields := strings.Fields(line)
		sep := strings.Index(line, " - ")
		if len(fields) < 5 || sep < 0 {
			continue
		}
		rest := strings.Fields(line[sep+3:])
		if len(rest) == 0 {
			continue
		}
		mps = append(mps, [2]string{unescapeMountinfo(fields[4]), rest[0]})
	}
	return mps, sc.Err()
}

// unescapeMountinfo decodes the octal escapes (\040 etc.) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isFuseMount(dir string) (bool, error) {
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	for _, mp := range mps {
		if mp[0] == dir && strings.HasPrefix(mp[1], "fuse") {
			return true, nil
		}
	}
	return false, nil
}

// startHostB creates host B's namespaces: a process running as PID 1 of a
// new PID namespace, in new UTS and mount namespaces, that sets the host
// name, mounts a private /proc (done by unshare --mount-proc), bind-mounts
// a fake boot ID (and machine ID) and then sleeps. CommandB enters its
// namespaces with nsenter. Killing it kills everything on host B.
func (c *Cluster) startHostB(st *clusterState) {
	c.t.Helper()
	bootFile := filepath.Join(c.dir, "boot_id.b")
	if err := os.WriteFile(bootFile, []byte(c.BootIDB+"\n"), 0o444); err != nil {
		c.t.Fatalf("sshfstest: %v", err)
	}
	machineFile := ""
	if _, err := os.Stat("/etc/machine-id"); err == nil {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			c.t.Fatalf("sshfstest: %v", err)
		}
		machineFile = filepath.Join(c.dir, "machine-id.b")
		if err := os.WriteFile(machineFile, []byte(hex.EncodeToString(b[:])+"\n"), 0o444); err != nil {
			c.t.Fatalf("sshfstest: %v", err)
		}
	}
	const script = `set -e
if command -v hostname >/dev/null 2>&1; then
	hostname "$1"
else
	printf '%s\n' "$1" >/proc/sys/kernel/hostname
fi
"$2" --bind -- "$3" /proc/sys/kernel/random/boot_id
if [ -n "$4" ]; then
	"$2" --bind -- "$4" /etc/machine-id
fi
exec sleep infinity`
	d := c.spawn(st, "hostb-init", c.unshare,
		"--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
		"--", c.sh, "-c", script, markerInit, c.HostB, c.mount, bootFile, machineFile)
	st.init = d

	// Wait until the namespace's PID 1 has finished its set-up and exec'd
	// sleep.
	deadline := time.Now().Add(hostBReadyTimeout)
	delay := 100 * time.Microsecond
	for {
		kids, _ := children(d.cmd.Process.Pid)
		for _, k := range kids {
			if argv, err := readCmdline(k); err == nil && len(argv) == 2 && argv[1] == "infinity" {
				c.initPID = k
				return
			}
		}
		if d.exited() {
			c.t.Fatalf("sshfstest: creating host B's namespaces failed (%s); log:\n%s", d.status(), d.logTail())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("sshfstest: host B's namespaces not ready after %v; log:\n%s", hostBReadyTimeout, d.logTail())
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// teardown undoes Start in reverse order. It runs from t.Cleanup and also
// after a failed or panicking test; it reports problems with t.Errorf.
func (c *Cluster) teardown(st *clusterState, tools map[string]string) {
	t := c.t
	var errs []error

	// The order matters: everything is stopped from the outside in, so
	// that every process is reaped by its own parent and nothing is left
	// behind as an orphan or zombie.

	// Host B first: its mount namespace holds copies of both mounts. Killing
	// its PID 1 makes the kernel kill every host-B process; unshare then
	// reaps it and exits.
	if st.init != nil {
		if c.initPID > 0 {
			_ = syscall.Kill(c.initPID, syscall.SIGKILL)
			st.init.waitExit(exitTimeout)
		}
		if err := st.init.kill(); err != nil {
			errs = append(errs, err)
		}
	}

	// Lazily unmount both mounts; each sshfs then exits by itself.
	for _, m := range st.mounted {
		out, err := exec.Command(tools["fusermount"], "-u", "-z", m).CombinedOutput()
		if err != nil {
			if err2 := syscall.Unmount(m, syscall.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %v: %s; umount2: %v", m, err, strings.TrimSpace(string(out)), err2))
			}
		}
	}
	for _, d := range st.sshfs {
		d.waitExit(graceTimeout)
		if err := d.kill(); err != nil {
			errs = append(errs, err)
		}
	}

	// sshd's per-connection processes (in sessions of their own) end once
	// their sshfs client is gone; give them a moment so that sshd reaps
	// them, kill any stragglers by PID, then kill sshd.
	if st.sshd != nil && !st.sshd.exited() {
		pid := st.sshd.cmd.Process.Pid
		deadline := time.Now().Add(graceTimeout)
		for {
			kids, err := children(pid)
			if err != nil || len(kids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				for _, k := range kids {
					_ = syscall.Kill(k, syscall.SIGKILL)
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, d := range st.daemons {
		if err := d.kill(); err != nil {
			errs = append(errs, err)
		}
	}

	if t.Failed() || len(errs) > 0 {
		for _, d := range st.daemons {
			t.Logf("sshfstest: %s (pid %d) %s; log:\n%s", d.name, d.cmd.Process.Pid, d.status(), d.logTail())
		}
	}

	// Remove the temporary directory unless something is still mounted in
	// it (removing through a mount would recurse into it).
	busy := false
	if mps, err := mountPoints(); err != nil {
		errs = append(errs, err)
		busy = true
	} else {
		for _, mp := range mps {
			if mp[0] == c.dir || strings.HasPrefix(mp[0], c.dir+"/") {
				errs = append(errs, fmt.Errorf("%s is still mounted; leaving %s in place", mp[0], c.dir))
				busy = true
			}
		}
	}
	if !busy {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}

	c.mu.Lock()
	for _, cmd := range c.cmds {
		registry.Delete(cmd)
	}
	c.cmds = nil
	c.mu.Unlock()

	if err := errors.Join(errs...); err != nil {
		t.Errorf("sshfstest: teardown: %v", err)
	}
}
