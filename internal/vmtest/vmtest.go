// Package vmtest boots three small QEMU virtual machines for tests that need
// real network filesystems between separate hosts: a server S running kernel
// nfsd and Samba, and two clients A and B that mount its export over NFS v3,
// NFS v4.2 and SMB 3.1.1, each with the default options and with caching off
// (Mounts lists them; every mount is at the same path on A and B).
//
// The guests boot the host's own kernel (/boot/vmlinuz-*) with a tiny
// initramfs that mounts the host's / read-only over virtio-9p under a tmpfs
// overlay, so they run the host's installed programs and never write to it.
// Each has its own host name, boot ID, clock and network stack; the network
// (10.99.0.0/24) joins only the three guests. A host directory (Cluster.Share)
// is mounted read-write at SharePath on every guest, to hand in test binaries
// (build them with CGO_ENABLED=0) and collect results. Commands run in a
// guest through a runner that polls a control directory in the share.
//
// Start skips the test, saying why, unless DOTLOCK_VMTEST is set (a run
// takes minutes of CPU), the test runs as root on linux/amd64, and
// QEMU, a kernel with its modules and static busybox are installed:
// .ci/setup-vms installs them on Debian.
package vmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hosts of a cluster, as Run and the other methods name them.
const (
	S = "s" // server: nfsd and smbd, export at /export
	A = "a" // client
	B = "b" // client
)

// SharePath is where Cluster.Share is mounted in every guest.
const SharePath = "/vmshare"

// ServerIP is S's address; A is 10.99.0.2 and B 10.99.0.3.
const ServerIP = "10.99.0.1"

// Options tunes a cluster; the zero value is fine.
type Options struct {
	MemoryMiB   int           // per VM; default 384
	BootTimeout time.Duration // boot and mount; default 4 min
}

// Cluster is a running set of three VMs.
type Cluster struct {
	Share    string        // host directory mounted at SharePath in the guests
	Booted   time.Duration // from Start until every guest's runner was ready
	Ready    time.Duration // from Start until every mount was up
	AccelTCG bool          // software emulation (no usable KVM)

	t    testing.TB
	dir  string
	opt  Options
	mu   sync.Mutex
	vms  map[string]*vm
	seq  int
	done chan struct{}
}

// Start boots S, A and B, sets up the server and mounts every entry of
// Mounts on A and B. The test fails if that takes longer than
// Options.BootTimeout; t.Cleanup tears everything down.
func Start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if why := unsupported(); why != "" {
		t.Skip("vmtest: " + why)
	}
	if opt.MemoryMiB == 0 {
		opt.MemoryMiB = 384
	}
	if opt.BootTimeout == 0 {
		opt.BootTimeout = 4 * time.Minute
	}
	// A short path: unix socket names are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "vmt")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: dir, opt: opt, vms: map[string]*vm{}, done: make(chan struct{}),
		Share: filepath.Join(dir, "share")}
	t.Cleanup(c.Teardown)
	begin := time.Now()
	deadline := begin.Add(opt.BootTimeout)
	if err := c.boot(deadline); err != nil {
		t.Fatalf("vmtest: boot: %v", err)
	}
	c.Booted = time.Since(begin)
	if err := c.setup(deadline); err != nil {
		t.Fatalf("vmtest: setup: %v", err)
	}
	c.Ready = time.Since(begin)
	t.Logf("vmtest: runners ready after %v, mounts after %v (TCG: %v)",
		c.Booted.Round(time.Second), c.Ready.Round(time.Second), c.AccelTCG)
	return c
}

// unsupported says why VMs cannot be booted here, or "".
func unsupported() string {
	switch {
	case os.Getenv("DOTLOCK_VMTEST") == "":
		return "set DOTLOCK_VMTEST=1 to boot three QEMU VMs (NFS/SMB server and two clients; minutes of CPU)"
	case runtime.GOOS != "linux" || runtime.GOARCH != "amd64":
		return "needs linux/amd64, not " + runtime.GOOS + "/" + runtime.GOARCH
	case os.Geteuid() != 0:
		return "needs root (QEMU shares the host's whole / read-only, and guests write root's files to the share); run as root after bash .ci/setup-vms"
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "qemu-system-x86_64 not found; run bash .ci/setup-vms"
	}
	if _, err := busybox(); err != nil {
		return err.Error()
	}
	if _, _, err := kernel(); err != nil {
		return err.Error()
	}
	return ""
}

// Teardown kills the VMs Start booted and removes its directory. It is
// registered with t.Cleanup; calling it again does nothing.
func (c *Cluster) Teardown() {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
		close(c.done)
	}
	vms := c.vms
	c.mu.Unlock()
	for _, v := range vms {
		v.kill()
	}
	if c.t.Failed() {
		for name, v := range vms {
			if tail := strings.TrimSpace(v.consoleTail(30)); tail != "" {
				c.t.Logf("vmtest: console of %s (last lines):\n%s", name, tail)
			}
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.t.Errorf("vmtest: %v", err)
	}
}

// KillVM kills a whole guest at once, as a host crash or power loss would.
func (c *Cluster) KillVM(host string) error {
	c.mu.Lock()
	v := c.vms[host]
	c.mu.Unlock()
	if v == nil {
		return fmt.Errorf("vmtest: no host %q", host)
	}
	v.kill()
	return nil
}

var (
	errStopped = errors.New("vmtest: cluster torn down") // calls after Teardown
	errTimeout = errors.New("timed out")
)
