package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CLIResult is scenario 5 for one command line: whole-process wall time of
// taking a free lock, running true(1) under it and releasing it.
type CLIResult struct {
	Name  string
	Argv  string
	Times []time.Duration
	Err   error
}

func (c CLIResult) Median() time.Duration { return pct(c.Times, 50) }
func (c CLIResult) P90() time.Duration    { return pct(c.Times, 90) }

// cliCase is one way to run true(1) under a lock: a sequence of commands
// run one after the other, each exec'd directly (no shell), L replaced by
// the lock path.
type cliCase struct {
	name string
	seq  [][]string
}

func cliCases(dotlock, dotlockStatic, goRun string) []cliCase {
	cs := []cliCase{
		{"true (no lock: process floor)", [][]string{{"true"}}},
		{"flock(1)", [][]string{{"flock", "-n", "L", "true"}}},
	}
	if goRun != "" {
		cs = append(cs, cliCase{goFloorName, [][]string{{goRun, "true"}}})
	}
	if dotlock != "" {
		cs = append(cs,
			cliCase{"dotlock --help (its process start alone)", [][]string{{dotlock, "--help"}}},
			cliCase{"dotlock (lock directory)", [][]string{{dotlock, "-n", "L", "true"}}},
			cliCase{"dotlock --file", [][]string{{dotlock, "--file", "-n", "L", "true"}}},
		)
	}
	if dotlockStatic != "" {
		cs = append(cs, cliCase{"dotlock, CGO_ENABLED=0 build", [][]string{{dotlockStatic, "-n", "L", "true"}}})
	}
	if _, err := exec.LookPath("dotlockfile"); err == nil {
		cs = append(cs, cliCase{"dotlockfile(1) (liblockfile)", [][]string{{"dotlockfile", "-l", "-r", "0", "-p", "L", "true"}}})
	}
	if _, err := exec.LookPath("lockfile"); err == nil {
		cs = append(cs, cliCase{"lockfile(1) (procmail) + true + rm", [][]string{{"lockfile", "-r0", "L"}, {"true"}, {"rm", "-f", "L"}}})
	}
	return cs
}

func runCLI(c cliCase, dir string, warm, reps int) CLIResult {
	r := CLIResult{Name: c.name}
	var parts []string
	for _, s := range c.seq {
		s = append([]string{filepath.Base(s[0])}, s[1:]...)
		parts = append(parts, strings.Join(s, " "))
	}
	r.Argv = strings.Join(parts, "; ")
	d, err := os.MkdirTemp(dir, "cli-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(d)
	lock := filepath.Join(d, "x.lock")
	for i := range warm + reps {
		t := time.Now()
		for _, argv := range c.seq {
			args := make([]string, len(argv))
			for k, a := range argv {
				if a == "L" {
					a = lock
				}
				args[k] = a
			}
			cmd := exec.Command(args[0], args[1:]...)
			if out, err := cmd.CombinedOutput(); err != nil {
				r.Err = fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
				return r
			}
		}
		if i >= warm {
			r.Times = append(r.Times, time.Since(t))
		}
	}
	return r
}

// goFloorName names the row of a Go program that only runs true (gorun).
const goFloorName = "Go floor: gorun true (CGO_ENABLED=0 build)"

// buildGoRun builds bench's gorun (root is the parent module's), statically,
// into dir.
func buildGoRun(root, dir string) (string, error) {
	out := filepath.Join(dir, "gorun")
	c := exec.Command("go", "build", "-o", out, "./cmd/gorun")
	c.Dir = filepath.Join(root, "bench")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("CGO_ENABLED=0 go build ./cmd/gorun: %v: %s", err, b)
	}
	return out, nil
}

// buildDotlock builds cmd/dotlock from the parent module into dir, with
// the default settings and static (CGO_ENABLED=0).
func buildDotlock(root, dir string) (string, string, error) {
	out := filepath.Join(dir, "dotlock")
	c := exec.Command("go", "build", "-o", out, "./cmd/dotlock")
	c.Dir = root
	if b, err := c.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/dotlock: %v: %s", err, b)
	}
	static := filepath.Join(dir, "dotlock-static")
	c = exec.Command("go", "build", "-o", static, "./cmd/dotlock")
	c.Dir = root
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		return out, "", fmt.Errorf("CGO_ENABLED=0 go build ./cmd/dotlock: %v: %s", err, b)
	}
	return out, static, nil
}

// cliOf is the median wall time of the command line called name.
func cliOf(f *FSResults, name string) time.Duration {
	for _, c := range f.CLI {
		if c.Name == name && c.Err == nil && len(c.Times) > 0 {
			return c.Median()
		}
	}
	return 0
}

func cliWhy(*Results) string {
	return "A Go program starts its runtime first: a static Go program that does nothing but run true through os/exec (section 5's Go floor row, bench/cmd/gorun) takes most of flock's time beyond true's, before any lock, and `dotlock --help` (the runtime and dotlock's packages, gopsutil's among them, starting) more; the cell gives dotlock against that Go floor too. A dynamically linked build also loads the C library, which the command does not need (`CGO_ENABLED=0`, as the README's install line builds it). Beyond the start (measured with timestamps in an instrumented build, on tmpfs): dotlock's larger binary starts its runtime about 0.5 ms after the Go floor does; os/signal's first Notify starts a thread of its own and waits for it (about 0.4 ms, overlapped with the lock path's checks, of which 0.15 ms is still waited for); the lock itself, with the record's process start time and boot ID, about 0.25 ms; and a process with more threads takes longer to exit. Two waits that the command made were cut: the main goroutine was locked to its thread from the start (for the command's parent-death signal; now only when it starts the command), and `-n` no longer starts a goroutine to watch for signals (3.31 → 3.08 ms against flock's 1.61 ms, 800 interleaved runs)."
}
