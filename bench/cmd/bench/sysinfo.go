package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Results is everything one run measured.
type Results struct {
	Started, Finished     time.Time
	Measured              time.Time // when measuring began, after the wait for a quiet machine
	Cfg                   config
	LoadBefore, LoadAfter string
	LoadPeak              float64
	QuietWaited           time.Duration
	Sys                   SysInfo
	Skipped               []string
	HaveNode, HavePython  bool
	HaveUnshare           bool
	FS                    []*FSResults
}

// FSResults is what was measured on one filesystem.
type FSResults struct {
	Dir, Type   string
	Alt         string            // a second mount of Dir's filesystem (sshfs), or ""
	Excluded    map[string]string // Go peers that failed the probe here, and why
	Uncontended []UncontendedResult
	Contended   []ContendResult
	Crash       []CrashResult
	Scale       []ScaleResult
	CLI         []CLIResult
	Slots       []SlotsResult
	Calls       []CallsResult // requests to the server per lock+unlock (sshfs)

	counter *callCounter // counts the server's requests, where it can
}

// Dirs are the views of the filesystem: the mount, and a second one.
func (f *FSResults) Dirs() []string {
	if f.Alt != "" {
		return []string{f.Dir, f.Alt}
	}
	return []string{f.Dir}
}

// Label is "/tmp (ext4)".
func (f *FSResults) Label() string {
	if f.Alt != "" {
		return "sshfs, two mounts"
	}
	t := f.Type
	if i := strings.IndexByte(t, ' '); i > 0 {
		t = t[:i]
	}
	return f.Dir + " (" + t + ")"
}

// SysInfo describes the machine and the versions measured.
type SysInfo struct {
	CPU, Kernel, Go, Commit string
	Cores                   int
	Versions                [][2]string
	FSTypes                 map[string]string // dir -> "ext4 rw,relatime"
}

func sysInfo(root string, fss []string) SysInfo {
	s := SysInfo{Cores: runtime.NumCPU(), Go: runtime.Version(), FSTypes: map[string]string{}}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				s.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	s.Kernel = run("uname", "-srm")
	c := exec.Command("git", "describe", "--always", "--dirty")
	c.Dir = root
	if b, err := c.Output(); err == nil {
		s.Commit = strings.TrimSpace(string(b))
	}
	for _, d := range fss {
		s.FSTypes[d] = run("findmnt", "-fno", "FSTYPE,OPTIONS", "-T", d)
	}
	add := func(k, v string) {
		if v != "" {
			s.Versions = append(s.Versions, [2]string{k, v})
		}
	}
	add("dotlock", "this checkout, "+orUnknown(s.Commit))
	add("github.com/gofrs/flock", "v0.13.2")
	add("github.com/nightlyone/lockfile", "v1.0.0")
	add("github.com/rogpeppe/go-internal (lockedfile)", "v1.16.0")
	add("node", run("node", "--version"))
	add("proper-lockfile (npm)", nodePkgVersion("proper-lockfile"))
	add("python3", run(python, "--version"))
	add("python3-filelock (Debian)", debVersion("python3-filelock"))
	add("flock(1): util-linux (Debian)", debVersion("util-linux"))
	add("dotlockfile(1): liblockfile-bin (Debian)", debVersion("liblockfile-bin"))
	add("lockfile(1): procmail (Debian)", debVersion("procmail"))
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "commit unknown"
	}
	return "commit " + s
}

func run(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func debVersion(pkg string) string {
	return run("dpkg-query", "-W", "-f=${Version}", pkg)
}

func nodePkgVersion(pkg string) string {
	b, err := os.ReadFile(nodeDir + "/node_modules/" + pkg + "/package.json")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, `"version"`) {
			_, v, _ := strings.Cut(l, ":")
			return strings.Trim(strings.TrimSpace(v), `",`)
		}
	}
	return ""
}

// excluded says why impl cannot run on this filesystem, or "".
func (f *FSResults) excluded(impl Impl) string {
	for _, spec := range []string{impl.Spec, impl.HoldSpec} {
		if spec == "" {
			continue
		}
		name, _, _ := strings.Cut(spec, ",")
		if why := f.Excluded[name]; why != "" {
			return why
		}
	}
	return ""
}
