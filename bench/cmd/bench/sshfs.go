package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sshfsPair is one directory exported by a private sshd on 127.0.0.1 and
// mounted twice with sshfs, caches off — two clients of one network
// filesystem, as internal/sshfstest sets up for the library's two-host
// tests (which this module cannot import). O_EXCL and mkdir are decided by
// the server and exclude across the mounts; flock(2) is local to a mount.
type sshfsPair struct {
	dir    string
	A, B   string
	procs  []*exec.Cmd
	mounts []string
	opts   string

	sshfs     string   // the sshfs binary
	args      []string // its arguments before the mount point
	mountOpts string   // its -o options
}

// startSSHFS needs root, sshd, sshfs, ssh-keygen, fusermount and /dev/fuse.
func startSSHFS() (*sshfsPair, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root (sshd and FUSE mounts)")
	}
	tools := map[string]string{}
	for _, t := range []string{"/usr/sbin/sshd", "sshfs", "ssh-keygen", "fusermount"} {
		p, err := exec.LookPath(t)
		if err != nil {
			return nil, fmt.Errorf("%s not found (on Debian: apt-get install openssh-server sshfs)", t)
		}
		tools[filepath.Base(t)] = p
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("no /dev/fuse")
	}
	tmp, err := os.MkdirTemp("", "dotlock-bench-sshfs-")
	if err != nil {
		return nil, err
	}
	dir, _ := filepath.EvalSymlinks(tmp)
	s := &sshfsPair{dir: dir, A: filepath.Join(dir, "mnt-a"), B: filepath.Join(dir, "mnt-b")}
	fail := func(err error) (*sshfsPair, error) {
		s.stop()
		return nil, err
	}
	export := filepath.Join(dir, "export")
	for _, d := range []string{export, s.A, s.B} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(err)
		}
	}
	hostKey, clientKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "client_key")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command(tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", "dotlock-bench", "-f", k).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("ssh-keygen: %v: %s", err, out))
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return fail(err)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return fail(err)
	}
	os.MkdirAll("/run/sshd", 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "sshd_config")
	cfg := strings.Join([]string{
		"ListenAddress 127.0.0.1", "Port " + strconv.Itoa(port), "HostKey " + hostKey,
		"AuthorizedKeysFile " + authKeys, "PidFile " + filepath.Join(dir, "sshd.pid"),
		"PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"UsePAM no", "StrictModes no", "PermitRootLogin yes", "UseDNS no", "PrintMotd no",
		"X11Forwarding no", "AllowTcpForwarding no", "Subsystem sftp internal-sftp", "",
	}, "\n")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return fail(err)
	}
	if err := s.spawn(filepath.Join(dir, "sshd.log"), tools["sshd"], "-D", "-e", "-f", conf); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("sshd did not listen on port %d", port))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.opts = "dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0"
	opts := strings.Join([]string{
		"IdentityFile=" + clientKey, "IdentitiesOnly=yes", "UserKnownHostsFile=/dev/null",
		"GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=no", "BatchMode=yes",
		"LogLevel=ERROR", "port=" + strconv.Itoa(port), s.opts,
	}, ",")
	s.sshfs, s.args, s.mountOpts = tools["sshfs"], []string{"-f", "-F", "/dev/null", "root@127.0.0.1:" + export}, opts
	for i, m := range []string{s.A, s.B} {
		if err := s.spawn(filepath.Join(dir, fmt.Sprintf("sshfs-%d.log", i)), s.sshfs, append(slices.Clone(s.args), m, "-o", opts)...); err != nil {
			return fail(err)
		}
	}
	for _, m := range []string{s.A, s.B} {
		if err := waitMount(m, 15*time.Second); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "sshfs-0.log"))
			return fail(fmt.Errorf("%v: %s", err, log))
		}
		s.mounts = append(s.mounts, m)
	}
	return s, nil
}

func (s *sshfsPair) spawn(logPath, path string, args ...string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	c := exec.Command(path, args...)
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		return err
	}
	s.procs = append(s.procs, c)
	go c.Wait()
	return nil
}

func waitMount(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if fuseMounted(dir) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshfs did not mount %s", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fuseMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 8 && fs[4] == dir {
			for i, x := range fs {
				if x == "-" && i+1 < len(fs) && strings.HasPrefix(fs[i+1], "fuse") {
					return true
				}
			}
		}
	}
	return false
}

// stop unmounts, ends the daemons and removes the directory.
func (s *sshfsPair) stop() {
	if s == nil {
		return
	}
	for _, m := range s.mounts {
		exec.Command("fusermount", "-u", "-z", m).Run()
	}
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Process.Kill()
	}
	time.Sleep(100 * time.Millisecond)
	for _, m := range s.mounts {
		if fuseMounted(m) {
			exec.Command("fusermount", "-u", "-z", m).Run()
		}
	}
	os.RemoveAll(s.dir)
}
