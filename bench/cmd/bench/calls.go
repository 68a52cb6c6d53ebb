package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// On a network filesystem a lock costs what it asks of the server, one
// round trip a request. sshfs names each SFTP request it sends when run
// with sshfs_debug ("[00112] OPEN"); a third mount of the export, used by
// nothing else, counts them for one implementation at a time.

// CallsResult is what one lock+unlock asked of the server.
type CallsResult struct {
	Name  string
	PerOp float64            // requests per lock+unlock
	ByOp  map[string]float64 // by SFTP request type
	Err   error
}

// callCounter counts the SFTP requests of the counting mount.
type callCounter struct {
	mount string
	mu    sync.Mutex
	n     map[string]int64
}

var sftpRequest = regexp.MustCompile(`^\[\d+\] ([A-Z_]+)`)

// startCounting mounts the export a third time, with sshfs_debug, and
// counts the requests it sends.
func (s *sshfsPair) startCounting() (*callCounter, error) {
	c := &callCounter{mount: filepath.Join(s.dir, "mnt-count"), n: map[string]int64{}}
	if err := os.Mkdir(c.mount, 0o755); err != nil {
		return nil, err
	}
	args := append(slices.Clone(s.args), c.mount, "-o", s.mountOpts+",sshfs_debug")
	cmd := exec.Command(s.sshfs, args...)
	// Unbuffered, or the counts lag behind the requests.
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		cmd = exec.Command(stdbuf, append([]string{"-o0", "-e0", s.sshfs}, args...)...)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.procs = append(s.procs, cmd)
	go c.read(out)
	go cmd.Wait()
	if err := waitMount(c.mount, 15*time.Second); err != nil {
		return nil, err
	}
	s.mounts = append(s.mounts, c.mount)
	return c, nil
}

func (c *callCounter) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := sftpRequest.FindStringSubmatch(sc.Text()); m != nil {
			c.mu.Lock()
			c.n[m[1]]++
			c.mu.Unlock()
		}
	}
}

// snapshot returns the counts so far, once no request has come for a
// while: FUSE sends some (the release of a closed file) after the call
// that caused them has returned.
func (c *callCounter) snapshot() map[string]int64 {
	var last map[string]int64
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		c.mu.Lock()
		now := maps.Clone(c.n)
		c.mu.Unlock()
		if maps.Equal(now, last) {
			return now
		}
		last = now
	}
	return last
}

// count runs rounds lock+unlock rounds of name through the counting
// mount, after one round that is not counted (the handle's setup and the
// first lookups), less what a run of no rounds costs (the process's own
// start, and the handle's).
func (c *callCounter) count(name string, rounds int) CallsResult {
	r := CallsResult{Name: name, ByOp: map[string]float64{}}
	d, err := os.MkdirTemp(c.mount, "calls-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(d)
	run := func(n int) (map[string]int64, error) {
		before := c.snapshot()
		cmd := exec.Command(self, "worker", "rounds", name, filepath.Join(d, "x.lock"), strconv.Itoa(n))
		if _, err := runTimeout(cmd, 2*time.Minute); err != nil {
			return nil, err
		}
		after := c.snapshot()
		for k, v := range before {
			after[k] -= v
		}
		return after, nil
	}
	base, err := run(0)
	if err != nil {
		r.Err = err
		return r
	}
	all, err := run(rounds)
	if err != nil {
		r.Err = err
		return r
	}
	for op, n := range all {
		if d := float64(n-base[op]) / float64(rounds); d > 0.05 {
			r.ByOp[op] = d
			r.PerOp += d
		}
	}
	return r
}

// String lists the requests, the most frequent first.
func (r CallsResult) String() string {
	ops := slices.Collect(maps.Keys(r.ByOp))
	slices.SortFunc(ops, func(a, b string) int {
		if r.ByOp[a] != r.ByOp[b] {
			if r.ByOp[a] > r.ByOp[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %s", op, strconv.FormatFloat(r.ByOp[op], 'f', -1, 64)))
	}
	return strings.Join(parts, ", ")
}

// renderCalls tells what one lock+unlock asks of the server, where that
// was counted.
func renderCalls(w func(string, ...any), f *FSResults) {
	if len(f.Calls) == 0 {
		return
	}
	w("### %s: requests to the server per lock+unlock\n\n", f.Label())
	w("On a network filesystem each request is a round trip, and what a lock costs is mostly how many it sends. Counted by a third sshfs mount of the same export, with `sshfs_debug` (each SFTP request it sends), over 20 rounds after one that is not counted, less what a run of no rounds costs. ")
	w("With the caches off (`attr_timeout=0`), the kernel asks again for attributes it was just given: a stat is two requests (LSTAT for the lookup, LSTAT for the attributes), an open three (LSTAT, OPEN and sshfs's own LSTAT), a read call two (FSTAT, then READ), and each directory between the mount and the lock one LSTAT more per path named; a record read is an open, a read and a close, six (its fstat, for the file's type, is answered by the client: docs/PROTOCOL.md, Round trips). See [Where targets are missed](#where-targets-are-missed-and-why) for each request's purpose.\n\n")
	var excl, mk float64
	for _, c := range f.Calls {
		switch c.Name {
		case "raw-excl":
			excl = c.PerOp
		case "raw-mkdir":
			mk = c.PerOp
		}
	}
	w("| implementation | requests | × O_EXCL floor's | × mkdir floor's | by request |\n| --- | ---: | ---: | ---: | --- |\n")
	for _, c := range f.Calls {
		if c.Err != nil {
			w("| %s | %s | | | |\n", c.Name, errCell(c.Err))
			continue
		}
		w("| %s | %.1f | %s | %s | %s |\n", c.Name, c.PerOp, ratio(c.PerOp, excl), ratio(c.PerOp, mk), c)
	}
	w("\n")
}

// callsOf is what one lock+unlock of name asked of the server, where
// that was counted (0 if not).
func callsOf(f *FSResults, name string) float64 {
	for _, c := range f.Calls {
		if c.Name == name && c.Err == nil {
			return c.PerOp
		}
	}
	return 0
}
