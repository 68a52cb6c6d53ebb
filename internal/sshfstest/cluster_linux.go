package sshfstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
