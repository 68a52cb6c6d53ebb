package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// vm is one QEMU process.
type vm struct {
	name    string
	cmd     *exec.Cmd
	console string        // serial console log
	exited  chan struct{} // closed once QEMU has exited
	err     error         // QEMU's exit status, once exited
}

// guestIP maps each host to its address on the guests' network.
var guestIP = map[string]string{S: ServerIP, A: "10.99.0.2", B: "10.99.0.3"}

// boot starts the three VMs and waits for their runners.
func (c *Cluster) boot(deadline time.Time) error {
	img, version, err := kernel()
	if err != nil {
		return err
	}
	initrd := filepath.Join(c.dir, "initrd")
	if err := buildInitramfs(initrd, version); err != nil {
		return fmt.Errorf("initramfs: %v", err)
	}
	for _, h := range []string{S, A, B} {
		if err := os.MkdirAll(filepath.Join(c.Share, "ctl", h), 0o755); err != nil {
			return err
		}
	}
	c.AccelTCG = useTCG()
	for _, h := range []string{S, A, B} {
		if err := c.startVM(h, img, initrd); err != nil {
			return err
		}
	}
	for _, h := range []string{S, A, B} {
		ready := filepath.Join(c.Share, "ctl", h, "ready")
		if err := c.poll(h, deadline, func() bool { _, err := os.Stat(ready); return err == nil }); err != nil {
			return fmt.Errorf("%s: runner not ready: %v", h, err)
		}
	}
	return nil
}

// useTCG says whether to emulate: /dev/kvm is missing, or it is PVM,
// which boots only special guest kernels (a stock one hangs).
func useTCG() bool {
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return true
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return true
	}
	f.Close()
	return false
}

// startVM starts QEMU for host h. Each client has one link to S, a pair
// of unix datagram sockets; S bridges its two.
func (c *Cluster) startVM(h, img, initrd string) error {
	sock := func(from, to string) string { return filepath.Join(c.dir, from+"-"+to+".sock") }
	link := func(id, peer, mac string) []string {
		return []string{
			"-netdev", fmt.Sprintf("dgram,id=%s,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s",
				id, sock(h, peer), sock(peer, h)),
			"-device", "virtio-net-pci,netdev=" + id + ",mac=" + mac,
		}
	}
	accel := []string{"-accel", "kvm", "-cpu", "host"}
	if c.AccelTCG {
		accel = []string{"-accel", "tcg,tb-size=128"}
	}
	v := &vm{name: h, console: filepath.Join(c.dir, h+".console"), exited: make(chan struct{})}
	args := append(accel,
		"-name", "vmtest-"+h, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", fmt.Sprint(c.opt.MemoryMiB), "-smp", "1", "-rtc", "base=utc",
		"-kernel", img, "-initrd", initrd,
		"-append", fmt.Sprintf("console=ttyS0 panic=-1 quiet vmhost=%s vmip=%s", h, guestIP[h]),
		"-serial", "file:"+v.console,
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path="+c.Share+",mount_tag=share,security_model=none")
	if h == S {
		args = append(args, link("na", A, "52:54:00:99:01:02")...)
		args = append(args, link("nb", B, "52:54:00:99:01:03")...)
	} else {
		args = append(args, link("ns", S, "52:54:00:99:00:0"+map[string]string{A: "2", B: "3"}[h])...)
	}
	log, err := os.Create(filepath.Join(c.dir, h+".qemu.log"))
	if err != nil {
		return err
	}
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	v.cmd.Stdout, v.cmd.Stderr = log, log
	dieWithTest(v.cmd)
	if err := v.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: %v", h, err)
	}
	go func() {
		v.err = v.cmd.Wait()
		log.Close()
		close(v.exited)
	}()
	c.mu.Lock()
	c.vms[h] = v
	c.mu.Unlock()
	return nil
}

// kill stops QEMU at once and waits until it is gone.
func (v *vm) kill() {
	select {
	case <-v.exited:
		return
	default:
	}
	_ = v.cmd.Process.Kill()
	<-v.exited
}

// consoleTail returns the last n lines of the guest's console and QEMU's
// own messages.
func (v *vm) consoleTail(n int) string {
	b, _ := os.ReadFile(v.console)
	q, _ := os.ReadFile(strings.TrimSuffix(v.console, ".console") + ".qemu.log")
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n" + string(q)
}

// poll waits until cond holds, failing early if h's QEMU exits or the
// cluster is torn down.
func (c *Cluster) poll(h string, deadline time.Time, cond func() bool) error {
	c.mu.Lock()
	v := c.vms[h]
	c.mu.Unlock()
	for !cond() {
		if v != nil {
			select {
			case <-v.exited:
				return fmt.Errorf("QEMU exited (%v); console:\n%s", v.err, v.consoleTail(20))
			default:
			}
		}
		select {
		case <-c.done:
			return errStopped
		default:
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
