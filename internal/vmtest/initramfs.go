package vmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// initModules are what the initramfs loads to reach the host's / over
// virtio-9p and overlay it; modprobe adds their dependencies. The guests
// load everything else themselves from the host's /lib/modules.
var initModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// kernel returns the newest /boot/vmlinuz-* whose modules are installed,
// and its version.
func kernel() (path, version string, err error) {
	images, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(images)))
	for _, img := range images {
		v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		if _, err := os.Stat(filepath.Join("/lib/modules", v, "modules.dep")); err == nil {
			return img, v, nil
		}
	}
	return "", "", fmt.Errorf("no /boot/vmlinuz-* with its /lib/modules (found %d images); run bash .ci/setup-vms", len(images))
}

// busybox returns a statically linked busybox: the initramfs has no libc.
func busybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// A dynamic ELF names its interpreter (/lib64/ld-linux-...).
		if !bytes.Contains(b[:min(len(b), 4096)], []byte("/ld-linux")) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no static busybox in /bin or /usr/bin; run bash .ci/setup-vms (busybox-static)")
}

// moduleFiles lists the .ko files of initModules and their dependencies,
// each after what it needs, as insmod must load them.
func moduleFiles(version string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	for _, m := range initModules {
		out, err := exec.Command("modprobe", "-S", version, "--show-depends", m).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("modprobe --show-depends %s: %v: %s", m, err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "insmod" && !seen[f[1]] {
				seen[f[1]] = true
				files = append(files, f[1])
			}
		}
	}
	return files, nil
}

// buildInitramfs writes an uncompressed newc cpio archive with busybox,
// the modules and the scripts of guest.go.
func buildInitramfs(path, version string) error {
	bb, err := busybox()
	if err != nil {
		return err
	}
	mods, err := moduleFiles(version)
	if err != nil {
		return err
	}
	var w cpioWriter
	for _, d := range []string{"bin", "dev", "proc", "sys", "m", "ro", "rw", "newroot"} {
		w.add(d, 0o40755, nil)
	}
	if err := w.addFile("bin/busybox", bb, 0o100755); err != nil {
		return err
	}
	for i, m := range mods {
		if err := w.addFile(fmt.Sprintf("m/%02d-%s", i, filepath.Base(m)), m, 0o100644); err != nil {
			return err
		}
	}
	if err := w.addFile("vmtest-busybox", bb, 0o100755); err != nil {
		return err
	}
	w.add("init", 0o100755, []byte(stage1))
	w.add("stage2", 0o100755, []byte(stage2))
	w.add("inittab", 0o100644, []byte(inittab))
	w.add("TRAILER!!!", 0, nil)
	return os.WriteFile(path, w.buf.Bytes(), 0o644)
}

// cpioWriter builds a newc ("070701") archive, the format the kernel
// unpacks into its initial root.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *cpioWriter) addFile(name, src string, mode int) error {
	b, err := os.ReadFile(src)
	if err == nil {
		w.add(name, mode, b)
	}
	return err
}

func (w *cpioWriter) add(name string, mode int, data []byte) {
	w.ino++
	nlink := 1
	if mode&0o40000 != 0 {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
	w.buf.Write(data)
	w.pad()
}

// pad aligns to 4 bytes, as newc wants after each header+name and data.
func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}
