package lockdir_test

// Helper processes for the shared/exclusive tests (rw_test.go).
//
// The tests re-execute the test binary with DOTLOCK_RW_HELPER set to a
// role and DOTLOCK_RW_SPEC to an rwSpec in JSON. init below notices this
// and plays the role instead of running tests: it runs before TestMain
// (locktest.Main, which dispatches its own helpers on another variable).
//
// A helper talks to the test through its standard streams, as the
// locktest helpers do: it writes one line per event to stdout, first
// "ready PID", then role-specific lines, and "error MESSAGE" (exit status
// 1) when something fails; it reads lines from stdin ("go", "release");
// EOF on stdin means "stop: release what you hold and exit". The test
// side (rwProc) reads the lines with deadlines and never sleeps to
// synchronise. Events that must be ordered across processes go to an
// O_APPEND log, one write per line.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/locktest"
	"github.com/dotlock/dotlock/lockdir"
)

const (
	rwHelperEnv = "DOTLOCK_RW_HELPER" // the role; set only in helper processes
	rwSpecEnv   = "DOTLOCK_RW_SPEC"   // the rwSpec, as JSON
)

// Helper roles.
const (
	// roleHold takes the lock (Kind) at once, appends "acquire KIND PID
	// TOKEN NS" to Log if set, prints "held TOKEN", and holds until a line
	// or EOF arrives on stdin; then releases and prints "released" (or
	// "unlock-error MESSAGE") and exits.
	roleHold = "hold"
	// roleLoop waits for "go", then loops Iterations times (0: until EOF on
	// stdin): take the lock (Kind), append "begin KIND PID TOKEN NS", hold
	// for Hold, append "end KIND PID TOKEN NS", release. It prints "running"
	// after its first acquisition and "done N" at the end. With WatchQueue
	// it appends "wait KIND PID 0 NS" when its lock reports that it waits
	// (WithOnWait) and "queued KIND PID 0 NS" when it sees a waiter of its
	// own kind in the queue directory (the test makes it the only one).
	// With WaitReaders (writers) each round begins only once readers hold.
	roleLoop = "loop"
	// roleFile waits for "go", then does Iterations operations on the data
	// file Data, in turn: Transform (+1), OpenWrite in place (+1), OpenRead
	// (check), ReadFile (check). It prints "done INCREMENTS READS".
	roleFile = "file"
)

// Lock kinds of a helper.
const (
	kindReader = "r" // RLock
	kindWriter = "w" // Lock
	kindPlain  = "p" // lockdir.New(...).Lock: a plain lock is a writer
)

type rwSpec struct {
	Role        string
	Path        string        // lock path (hold, loop)
	Log         string        // O_APPEND event log
	Kind        string        // kindReader, kindWriter or kindPlain
	Iterations  int           // loop, file
	Hold        time.Duration // loop: length of each hold
	PollMax     time.Duration // WithPoll(1ms, PollMax) if not 0
	StaleAfter  time.Duration // WithStaleAfter if not 0
	WatchQueue  bool          // loop
	WaitReaders bool          // loop
	Data        string        // file
}

func init() {
	role := os.Getenv(rwHelperEnv)
	if role == "" {
		return
	}
	var s rwSpec
	if err := json.Unmarshal([]byte(os.Getenv(rwSpecEnv)), &s); err != nil || s.Role != role {
		fmt.Fprintf(os.Stderr, "rw helper: bad %s (%v) for role %q\n", rwSpecEnv, err, role)
		os.Exit(2)
	}
	os.Exit(rwHelperMain(s))
}

// rwHelper is the helper side.
type rwHelper struct {
	s     rwSpec
	out   sync.Mutex
	stdin *bufio.Scanner
	log   *os.File
}

func (h *rwHelper) say(format string, args ...any) {
	h.out.Lock()
	defer h.out.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// event appends one line to the log, in one write.
func (h *rwHelper) event(what string, token uint64) error {
	if h.log == nil {
		return nil
	}
	return appendLine(h.log, fmt.Sprintf("%s %s %d %d %d\n", what, h.s.Kind, os.Getpid(), token, time.Now().UnixNano()))
}

func (h *rwHelper) opts(extra ...dotlock.Option) []dotlock.Option {
	var o []dotlock.Option
	if h.s.PollMax > 0 {
		o = append(o, dotlock.WithPoll(time.Millisecond, h.s.PollMax))
	}
	if h.s.StaleAfter > 0 {
		o = append(o, dotlock.WithStaleAfter(h.s.StaleAfter))
	}
	return append(o, extra...)
}

// readLine waits for the next stdin line; false at EOF.
func (h *rwHelper) readLine() (string, bool) {
	if !h.stdin.Scan() {
		return "", false
	}
	return h.stdin.Text(), true
}

func rwHelperMain(s rwSpec) int {
	h := &rwHelper{s: s, stdin: bufio.NewScanner(os.Stdin)}
	if s.Log != "" {
		f, err := os.OpenFile(s.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			h.say("error %v", err)
			return 1
		}
		defer f.Close()
		h.log = f
	}
	h.say("ready %d", os.Getpid())
	var err error
	switch s.Role {
	case roleHold:
		err = h.hold()
	case roleLoop:
		err = h.loop()
	case roleFile:
		err = h.file()
	default:
		err = fmt.Errorf("unknown role %q", s.Role)
	}
	if err != nil {
		h.say("error %s", strings.ReplaceAll(err.Error(), "\n", " | "))
		return 1
	}
	return 0
}

// locker is one lock handle of the helper's kind.
type locker struct {
	kind  string
	rw    *lockdir.Lock
	plain *lockdir.Lock
}

func (h *rwHelper) newLocker(extra ...dotlock.Option) (*locker, error) {
	lk := &locker{kind: h.s.Kind}
	var err error
	switch h.s.Kind {
	case kindReader, kindWriter:
		lk.rw, err = lockdir.New(h.s.Path, h.opts(extra...)...)
	case kindPlain:
		lk.plain, err = lockdir.New(h.s.Path, h.opts(extra...)...)
	default:
		err = fmt.Errorf("unknown kind %q", h.s.Kind)
	}
	return lk, err
}

func (lk *locker) lock(ctx context.Context) error {
	switch lk.kind {
	case kindReader:
		return lk.rw.RLock(ctx)
	case kindWriter:
		return lk.rw.Lock(ctx)
	}
	return lk.plain.Lock(ctx)
}

func (lk *locker) unlock() error {
	switch lk.kind {
	case kindReader:
		return lk.rw.RUnlock()
	case kindWriter:
		return lk.rw.Unlock()
	}
	return lk.plain.Unlock()
}

func (lk *locker) token() uint64 {
	if lk.plain != nil {
		return lk.plain.Token()
	}
	return lk.rw.Token()
}

func (h *rwHelper) hold() error {
	lk, err := h.newLocker()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := lk.lock(ctx); err != nil {
		return err
	}
	if err := h.event("acquire", lk.token()); err != nil {
		return err
	}
	h.say("held %d", lk.token())
	h.readLine() // a line ("release") or EOF
	if err := lk.unlock(); err != nil {
		h.say("unlock-error %s", strings.ReplaceAll(err.Error(), "\n", " | "))
		return nil
	}
	h.say("released")
	return nil
}

func (h *rwHelper) loop() error {
	if l, ok := h.readLine(); !ok || l != "go" {
		return fmt.Errorf("expected go, got %q", l)
	}
	stop := make(chan struct{})
	go func() {
		for {
			if _, ok := h.readLine(); !ok {
				close(stop)
				return
			}
		}
	}()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var waited bool
	var waitMu sync.Mutex
	lk, err := h.newLocker(dotlock.WithOnWait(func(*dotlock.LockedError) {
		waitMu.Lock()
		defer waitMu.Unlock()
		if !waited && h.s.WatchQueue {
			waited = true
			h.event("wait", 0)
		}
	}))
	if err != nil {
		return err
	}
	var watch *lockdir.Lock // for Readers()
	if h.s.WaitReaders {
		if watch, err = lockdir.New(h.s.Path); err != nil {
			return err
		}
	}
	n := 0
	for h.s.Iterations == 0 || n < h.s.Iterations {
		if h.s.Iterations == 0 && stopped() {
			break
		}
		if watch != nil {
			// Begin the round while readers hold, so that it must wait:
			// poll the real state, with a deadline.
			deadline := time.Now().Add(30 * time.Second)
			for {
				rs, err := watch.Readers()
				if err != nil {
					return err
				}
				if len(rs) > 0 {
					break
				}
				if time.Now().After(deadline) {
					return errors.New("no reader held within 30s")
				}
				time.Sleep(200 * time.Microsecond)
			}
		}
		waitMu.Lock()
		waited = false
		waitMu.Unlock()
		var stopWatch chan struct{}
		var watchDone chan struct{}
		if h.s.WatchQueue {
			stopWatch, watchDone = make(chan struct{}), make(chan struct{})
			go h.watchQueue(stopWatch, watchDone)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := lk.lock(ctx)
		cancel()
		if stopWatch != nil {
			close(stopWatch)
			<-watchDone // its "queued" line, if any, precedes "begin"
		}
		if err != nil {
			return fmt.Errorf("iteration %d: %w", n, err)
		}
		if err := h.event("begin", lk.token()); err != nil {
			return err
		}
		if n == 0 {
			h.say("running")
		}
		if h.s.Hold > 0 {
			time.Sleep(h.s.Hold) // the work done while holding, not synchronisation
		}
		if err := h.event("end", lk.token()); err != nil {
			return err
		}
		if err := lk.unlock(); err != nil {
			return fmt.Errorf("iteration %d: unlock: %w", n, err)
		}
		n++
	}
	h.say("done %d", n)
	return nil
}

// watchQueue logs "queued" once a waiter of this helper's kind appears in
// the queue directory.
func (h *rwHelper) watchQueue(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	mark := ".w."
	if h.s.Kind == kindReader {
		mark = ".r."
	}
	q := h.s.Path + ".queue"
	for {
		select {
		case <-stop:
			return
		default:
		}
		if f, err := os.Open(q); err == nil {
			names, _ := f.Readdirnames(-1)
			f.Close()
			for _, n := range names {
				if strings.Contains(n, mark) {
					h.event("queued", 0)
					return
				}
			}
		}
		time.Sleep(100 * time.Microsecond) // polling a real event
	}
}

// Data file format for the file role: a JSON-ish header with the counter,
// a payload derived from it, and a checksum line over everything before.
//
//	{"counter": N, "payload": "N,N,N,...,"}
//	sha256 HEX
func dataContent(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"counter\": %d, \"payload\": \"%s\"}\n", n, strings.Repeat(strconv.Itoa(n)+",", 16000))
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "sha256 %s\n", hex.EncodeToString(sum[:]))
	return b.Bytes()
}

// parseData checks a data file and returns its counter.
func parseData(data []byte) (int, error) {
	body, sumLine, ok := bytes.Cut(data, []byte("}\n"))
	if !ok {
		return 0, fmt.Errorf("torn data file (%d bytes): no end of header", len(data))
	}
	body = append(body, "}\n"...)
	sum := sha256.Sum256(body)
	want := "sha256 " + hex.EncodeToString(sum[:]) + "\n"
	if string(sumLine) != want {
		return 0, fmt.Errorf("torn data file (%d bytes): checksum line %.80q, want %q", len(data), sumLine, want)
	}
	var v struct {
		Counter int    `json:"counter"`
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, fmt.Errorf("data file: %v", err)
	}
	if !bytes.Equal(data, dataContent(v.Counter)) {
		return 0, fmt.Errorf("data file for counter %d is not the one written for it", v.Counter)
	}
	return v.Counter, nil
}

func (h *rwHelper) file() error {
	if l, ok := h.readLine(); !ok || l != "go" {
		return fmt.Errorf("expected go, got %q", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := h.s.Data
	opts := h.opts()
	incs, reads := 0, 0
	for i := range h.s.Iterations {
		switch i % 4 {
		case 0: // replace whole: read, +1, rename over
			err := lockdir.Transform(ctx, name, 0o644, func(old []byte) ([]byte, error) {
				n, err := parseData(old)
				if err != nil {
					return nil, err
				}
				return dataContent(n + 1), nil
			}, opts...)
			if err != nil {
				return fmt.Errorf("transform: %w", err)
			}
			incs++
		case 1: // in place: read, truncate, write back +1 in many small writes
			f, err := lockdir.OpenWrite(ctx, name, os.O_RDWR, 0o644, opts...)
			if err != nil {
				return fmt.Errorf("open write: %w", err)
			}
			old, err := io.ReadAll(f)
			if err != nil {
				f.Close()
				return err
			}
			n, err := parseData(old)
			if err != nil {
				f.Close()
				return fmt.Errorf("in OpenWrite: %w", err)
			}
			if err := f.Truncate(0); err != nil {
				f.Close()
				return err
			}
			next := dataContent(n + 1)
			for off := 0; off < len(next); off += 128 {
				end := min(off+128, len(next))
				if _, err := f.WriteAt(next[off:end], int64(off)); err != nil {
					f.Close()
					return err
				}
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("close write: %w", err)
			}
			incs++
		case 2:
			f, err := lockdir.OpenRead(ctx, name, opts...)
			if err != nil {
				return fmt.Errorf("open read: %w", err)
			}
			data, err := io.ReadAll(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if _, err := parseData(data); err != nil {
				return fmt.Errorf("OpenRead saw: %w", err)
			}
			reads++
		case 3:
			data, err := lockdir.ReadFile(ctx, name, opts...)
			if err != nil {
				return fmt.Errorf("read file: %w", err)
			}
			if _, err := parseData(data); err != nil {
				return fmt.Errorf("ReadFile saw: %w", err)
			}
			reads++
		}
	}
	h.say("done %d %d", incs, reads)
	return nil
}

// rwProc is the test side of one helper process.
type rwProc struct {
	t      testing.TB
	label  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuf
	pid    int
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rwTimeout bounds each wait for a helper's event: a failure deadline,
// never a synchronisation delay.
const rwTimeout = 30 * time.Second

// startRW starts a helper playing s and waits for its "ready" line.
func startRW(t testing.TB, label string, s rwSpec) *rwProc {
	t.Helper()
	spec, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		rwHelperEnv+"="+s.Role,
		rwSpecEnv+"="+string(spec),
		// Under -race a process sleeps 1s at exit unless told not to.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	)
	p := &rwProc{t: t, label: label, cmd: cmd, lines: make(chan string, 1024), stderr: &syncBuf{}, exited: make(chan struct{})}
	var stdout io.ReadCloser
	cmd, err = locktest.StartCmd(cmd, func(cmd *exec.Cmd) (func(), error) {
		cmd.Stderr = p.stderr
		var err error
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stdout, err = cmd.StdoutPipe()
		return func() {}, err // the pipes are closed by the failed Start
	})
	if err != nil {
		t.Fatalf("helper %s: %v", label, err)
	}
	p.cmd = cmd
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.resume()
			cmd.Process.Kill()
			<-p.exited
		}
	})
	f := p.expect("ready")
	if p.pid, err = strconv.Atoi(f[1]); err != nil || p.pid != cmd.Process.Pid {
		t.Fatalf("helper %s: ready line %q, started PID %d", label, f, cmd.Process.Pid)
	}
	return p
}

// expect waits for the next line, which must begin with word; it returns
// the line's fields.
func (p *rwProc) expect(word string) []string {
	p.t.Helper()
	t := time.NewTimer(rwTimeout)
	defer t.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.t.Fatalf("helper %s exited (%v) while the test waited for %q; stderr:\n%s", p.label, p.err, word, p.stderr)
		}
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != word {
			p.t.Fatalf("helper %s: got %q, want a %q line; stderr:\n%s", p.label, l, word, p.stderr)
		}
		return f
	case <-t.C:
		p.t.Fatalf("helper %s: no %q line within %v; stderr:\n%s", p.label, word, rwTimeout, p.stderr)
	}
	return nil
}

// send writes a line to the helper's stdin.
func (p *rwProc) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("helper %s: send %q: %v", p.label, line, err)
	}
}

// closeStdin tells the helper to stop.
func (p *rwProc) closeStdin() { p.stdin.Close() }

// waitExit waits for the helper to exit and fails unless it exited 0.
func (p *rwProc) waitExit() {
	p.t.Helper()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.exited
				if p.err != nil {
					p.t.Fatalf("helper %s: %v; stderr:\n%s", p.label, p.err, p.stderr)
				}
				return
			}
			p.t.Fatalf("helper %s: unexpected line %q before exit", p.label, l)
		case <-time.After(rwTimeout):
			p.t.Fatalf("helper %s did not exit within %v", p.label, rwTimeout)
		}
	}
}

// kill SIGKILLs the helper and reaps it (so its PID is gone, not a zombie).
func (p *rwProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	for range p.lines {
	}
	<-p.exited
}
