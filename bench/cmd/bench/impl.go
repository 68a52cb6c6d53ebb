package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Impl is one lock implementation as the whole-process scenarios drive it:
// a command per role, speaking the worker protocol (worker.go, node/bench.js,
// python/bench_filelock.py).
type Impl struct {
	Name     string // row label
	Setting  string // how it was tuned ("" = defaults)
	Group    string // floor, dotlock, Go, Node, Python
	Polling  bool   // waiters poll (rather than block in the kernel or queue)
	Spec     string // Go peer spec, "" otherwise
	HoldSpec string // Go peer spec of the holder in crash recovery

	contend     func(lock, counter, id, out string) *exec.Cmd
	hold        func(lock string) *exec.Cmd
	wait        func(lock string, timeout time.Duration) *exec.Cmd
	uncontended func(lock string, batches, ops int) *exec.Cmd // nil: measured in process
}

// Label is the row label with its setting.
func (i Impl) Label() string {
	if i.Setting == "" {
		return i.Name
	}
	return i.Name + " (" + i.Setting + ")"
}

var self string // this executable, re-run as the Go worker

func goImpl(name, group, spec, setting string, polling bool) Impl {
	return goImplHold(name, group, spec, spec, setting, polling)
}

// goImplHold: the holder in crash recovery uses holdSpec (a reader, say)
// and the waiter spec.
func goImplHold(name, group, spec, holdSpec, setting string, polling bool) Impl {
	return Impl{
		Name: name, Group: group, Spec: spec, HoldSpec: holdSpec, Setting: setting, Polling: polling,
		contend: func(lock, counter, id, out string) *exec.Cmd {
			return exec.Command(self, "worker", "contend", spec, lock, counter, id, out)
		},
		hold: func(lock string) *exec.Cmd {
			return exec.Command(self, "worker", "hold", holdSpec, lock)
		},
		wait: func(lock string, timeout time.Duration) *exec.Cmd {
			return exec.Command(self, "worker", "wait", spec, lock, timeout.String())
		},
	}
}

// remoteHolder runs the holder as "another host": in its own UTS namespace
// with another host name, so that dotlock judges it by its lease.
func remoteHolder(i Impl) Impl {
	h := i.hold
	i.hold = func(lock string) *exec.Cmd {
		c := h(lock)
		args := append([]string{"--uts", "--", "sh", "-c", `hostname bench-hostb && exec "$@"`, "sh"}, c.Args...)
		return exec.Command("unshare", args...)
	}
	return i
}

var nodeDir, pythonScript string

func nodeImpl(pollMs int, setting string) Impl {
	script := filepath.Join(nodeDir, "bench.js")
	poll := strconv.Itoa(pollMs)
	return Impl{
		Name: "node proper-lockfile", Group: "Node", Setting: setting, Polling: true,
		contend: func(lock, counter, id, out string) *exec.Cmd {
			return exec.Command("node", script, "contend", lock, counter, id, out, poll)
		},
		hold: func(lock string) *exec.Cmd { return exec.Command("node", script, "hold", lock) },
		wait: func(lock string, timeout time.Duration) *exec.Cmd {
			return exec.Command("node", script, "wait", lock, secs(timeout), poll)
		},
		uncontended: func(lock string, batches, ops int) *exec.Cmd {
			return exec.Command("node", script, "uncontended", lock, strconv.Itoa(batches), strconv.Itoa(ops))
		},
	}
}

const python = "/usr/bin/python3"

func pyImpl(kind string, poll time.Duration, setting string) Impl {
	name := map[string]string{"soft": "python SoftFileLock", "flock": "python FileLock"}[kind]
	p := secs(poll)
	return Impl{
		Name: name, Group: "Python", Setting: setting, Polling: true,
		contend: func(lock, counter, id, out string) *exec.Cmd {
			return exec.Command(python, pythonScript, "contend", kind, lock, counter, id, out, p)
		},
		hold: func(lock string) *exec.Cmd { return exec.Command(python, pythonScript, "hold", kind, lock) },
		wait: func(lock string, timeout time.Duration) *exec.Cmd {
			return exec.Command(python, pythonScript, "wait", kind, lock, secs(timeout), p)
		},
		uncontended: func(lock string, batches, ops int) *exec.Cmd {
			return exec.Command(python, pythonScript, "uncontended", kind, lock, strconv.Itoa(batches), strconv.Itoa(ops))
		},
	}
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// haveNode and havePython say whether the whole-process peers can run, or why not.
func haveNode() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not found")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "proper-lockfile")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			return fmt.Errorf("bench/node/node_modules missing and npm not found")
		}
		c := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		c.Dir = nodeDir
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci in bench/node: %v: %s", err, out)
		}
	}
	return nil
}

func havePython() error {
	if err := exec.Command(python, "-c", "import filelock").Run(); err != nil {
		return fmt.Errorf("%s cannot import filelock (apt-get install python3-filelock)", python)
	}
	return nil
}
