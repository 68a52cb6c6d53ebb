package sshfstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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

func (c *Cluster) sshdLog() string {
	st := c.state
	if st == nil || st.sshd == nil {
		return "(none)"
	}
	return st.sshd.logTail()
}
