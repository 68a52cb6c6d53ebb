package locktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// Run runs the in-process conformance suite against k. Every subtest runs
// in parallel with the others, in a directory of its own.
//
// Timing rules: waits are on real events (a hold, a closed channel, a
// returned call) with generous deadlines; durations are asserted only as
// lower bounds by the monotonic clock, never as upper bounds on speed.
func Run(t *testing.T, k Kind) {
	tests := []struct {
		name string
		fn   func(*testing.T, Kind)
	}{
		{"Basic", testBasic},
		{"Tokens", testTokens},
		{"NotHeld", testNotHeld},
		{"Context", testContext},
		{"Goroutines", testGoroutines},
		{"Crafted", testCrafted},
		{"LeaseLoss", testLeaseLoss},
		{"HalfWritten", testHalfWritten},
		{"NotALock", testNotALock},
		{"StrangerDuringHold", testStrangerDuringHold},
		{"Causes", testCauses},
		{"Racing", testRacing},
		{"LostReply", testLostReply},
		{"RemoteGuard", testRemoteGuard},
		{"GuardVerify", testGuardVerify},
		{"LateRelease", testLateRelease},
		{"BadInput", testBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, k)
		})
	}
}

// Generous bounds for a loaded 2-core machine running -race. They only
// limit how long a broken implementation can hang a test; no assertion
// depends on an operation being fast.
const (
	ipPatience = 30 * time.Second // longest wait for something that must happen
	ipShort    = 300 * time.Millisecond
)

// inproc is one subtest's setting: a fresh directory with a lock path in it.
type inproc struct {
	t    *testing.T
	k    Kind
	dir  string
	path string // absolute lock path
}

func newInproc(t *testing.T, k Kind) *inproc {
	t.Helper()
	dir := testdir.New(t)
	return &inproc{t: t, k: k, dir: dir, path: filepath.Join(dir, "x.lock")}
}

// open returns a new handle on the lock path; whatever it holds when the
// test ends is released before the directory is removed.
func (e *inproc) open(opts ...lockcore.Option) Locker {
	e.t.Helper()
	return e.openAt(e.path, opts...)
}

// record returns a record for this process with the given token, changed
// by edit, and its bytes.
func (e *inproc) record(token uint64, edit func(*stale.Owner)) (stale.Owner, []byte) {
	e.t.Helper()
	o, err := stale.Self(token, stale.ModeExclusive, time.Now())
	if err != nil {
		e.t.Fatalf("stale.Self: %v", err)
	}
	if edit != nil {
		edit(&o)
	}
	return o, o.Marshal()
}

// plant leaves rec at the lock path as a holder would have left it.
func (e *inproc) plant(rec []byte) {
	e.t.Helper()
	if err := e.k.Plant(e.path, rec); err != nil {
		e.t.Fatalf("plant %s: %v", e.path, err)
	}
}

func (e *inproc) recordPath() string { return e.k.RecordPath(e.path) }

// readRecord returns the bytes of the record file at the lock path.
func (e *inproc) readRecord() []byte {
	e.t.Helper()
	b, err := os.ReadFile(e.recordPath())
	if err != nil {
		e.t.Fatalf("reading the record: %v", err)
	}
	return b
}

// lockStacks returns the stacks of this process's goroutines that are in
// the lock's code, for failure messages about a wait that did not end.
func lockStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var b strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/lockcore.") {
			b.WriteString(g)
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// DescribeLock lists what is on disk for the lock at path, for failure
// messages: the record at the path (a lock file, or each file in a lock
// directory), the queue, and the last, guard and want records.
func DescribeLock(path string) string {
	var b strings.Builder
	rec := func(name string) string {
		data, err := os.ReadFile(name)
		if err != nil {
			return err.Error()
		}
		o, err := stale.Parse(data)
		if err != nil {
			return fmt.Sprintf("unparseable (%v): %q", err, data)
		}
		return fmt.Sprintf("uuid %s mode %s pid %d token %d beat %d", o.UUID, o.Mode, o.PID, o.Token, o.Beat)
	}
	for _, p := range []string{path, path + ".queue"} {
		st, err := os.Lstat(p)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "%s: %v\n", filepath.Base(p), err)
		case !st.IsDir():
			fmt.Fprintf(&b, "%s: %s\n", filepath.Base(p), rec(p))
		default:
			ents, err := os.ReadDir(p)
			if err != nil {
				fmt.Fprintf(&b, "%s: %v\n", filepath.Base(p), err)
			}
			for _, e := range ents {
				fmt.Fprintf(&b, "%s/%s: %s\n", filepath.Base(p), e.Name(), rec(filepath.Join(p, e.Name())))
			}
		}
	}
	for _, suffix := range []string{".last", ".break", ".want"} {
		if _, err := os.Lstat(path + suffix); err == nil {
			fmt.Fprintf(&b, "%s: %s\n", filepath.Base(path+suffix), rec(path+suffix))
		}
	}
	return b.String()
}

// ElsewhereChecker returns a checker that takes this host for another
// (same boot and PID namespace, another host name): every record, this
// process's own included, is judged remote, by its lease.
func ElsewhereChecker(t testing.TB) *stale.Checker {
	t.Helper()
	id, err := stale.LocalIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return &stale.Checker{
		Local:     stale.Identity{Host: "not-" + id.Host, BootID: id.BootID, PIDNS: id.PIDNS},
		Processes: stale.SystemProcesses{},
	}
}

// ownerNow parses the record at the lock path, by reading the file itself.
func (e *inproc) ownerNow() stale.Owner {
	e.t.Helper()
	o, err := stale.Parse(e.readRecord())
	if err != nil {
		e.t.Fatalf("record at %s: %v", e.recordPath(), err)
	}
	return o
}

// wantPathErr checks that err is an *fs.PathError (itself, not merely in its
// chain) naming path, and returns it.
func wantPathErr(t *testing.T, err error, path string) *fs.PathError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want an *fs.PathError for %s", path)
	}
	pe, ok := err.(*fs.PathError)
	if !ok {
		t.Errorf("error %q is a %T, want an *fs.PathError", err, err)
		if !errors.As(err, &pe) {
			return nil
		}
	}
	if pe.Path != path {
		t.Errorf("error %q names path %q, want %q", err, pe.Path, path)
	}
	return pe
}

// wantLocked checks that err matches ErrLocked, wraps a *LockedError and is
// an *fs.PathError naming path; it returns the LockedError.
func wantLocked(t *testing.T, err error, path string) *lockcore.LockedError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one matching ErrLocked")
	}
	if !errors.Is(err, lockcore.ErrLocked) {
		t.Fatalf("error %q (%T) does not match ErrLocked", err, err)
	}
	var le *lockcore.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error %q matches ErrLocked but holds no *lockcore.LockedError", err)
	}
	wantPathErr(t, err, path)
	return le
}

// wantLockedBy checks that err is ErrLocked naming the holder with uuid.
func wantLockedBy(t *testing.T, err error, path, uuid string) *lockcore.LockedError {
	t.Helper()
	le := wantLocked(t, err, path)
	if len(le.Owners) == 0 || le.Owners[0].UUID != uuid {
		t.Fatalf("error %q does not name the holder %s (owners %v)", err, uuid, le.Owners)
	}
	return le
}

// holds checks that l holds the lock: its token is set, its Lost channel
// open, and the record at the path (read directly) carries its token and
// this process's PID. It returns that record.
func (e *inproc) holds(l Locker) stale.Owner {
	e.t.Helper()
	if l.Token() == 0 {
		e.t.Fatalf("handle does not hold the lock (Token() == 0)")
	}
	select {
	case <-l.Lost():
		e.t.Fatalf("handle's Lost channel is closed while it should hold")
	default:
	}
	o := e.ownerNow()
	if o.Token != l.Token() || o.PID != os.Getpid() {
		e.t.Fatalf("record at the path is %v, not the hold of token %d by pid %d", o, l.Token(), os.Getpid())
	}
	return o
}

// within runs f, failing the test if it has not returned within d (it must
// not hang; a hung f is left behind, the test fails).
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		panic("unreachable")
	}
}

// lockFor calls l.Lock with a context that ends after d.
func lockFor(l Locker, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return l.Lock(ctx)
}

// breaks records what a handle's WithOnBreak callback was told.
type breaks struct {
	mu      sync.Mutex
	reasons []string
	victims []*stale.Owner
}

func (b *breaks) option() lockcore.Option {
	return lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.reasons = append(b.reasons, reason)
		b.victims = append(b.victims, v)
	})
}

func (b *breaks) all() ([]string, []*stale.Owner) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.reasons...), append([]*stale.Owner(nil), b.victims...)
}

// wantBroke checks that exactly one break was reported, whose reason
// contains want, and whose victim has the given UUID ("" for an unreadable
// record, reported with a nil victim).
func (b *breaks) wantBroke(t *testing.T, uuid, want string) {
	t.Helper()
	reasons, victims := b.all()
	if len(reasons) != 1 {
		t.Fatalf("OnBreak called %d times (%q), want once", len(reasons), reasons)
	}
	if !strings.Contains(reasons[0], want) {
		t.Errorf("break reason %q does not mention %q", reasons[0], want)
	}
	switch {
	case uuid == "" && victims[0] != nil:
		t.Errorf("break victim %v, want nil for an unreadable record", victims[0])
	case uuid != "" && (victims[0] == nil || victims[0].UUID != uuid):
		t.Errorf("break victim %v, want the record %s", victims[0], uuid)
	}
}

// snapshot describes everything under root without following symlinks or
// opening anything but regular files: type, permissions, content, link
// target. Two equal snapshots mean nothing was changed.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + strconv.Quote(string(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", root, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range ents {
		ns = append(ns, e.Name())
	}
	return ns
}

// wantOnly checks that dir holds exactly the given names: no breaker
// guard, no record on its way out, left behind. A lock file's P.want, an
// empty file, may be there too once there were waiters: it stays until a
// releaser finds it stale (W4).
func wantOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := slices.DeleteFunc(names(t, dir), func(n string) bool {
		fi, err := os.Lstat(filepath.Join(dir, n))
		return strings.HasSuffix(n, ".want") && err == nil && fi.Mode().IsRegular() && fi.Size() == 0
	})
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("directory holds %q, want exactly %q", got, want)
	}
}

// freePID returns a PID that no process has now, and that the kernel will
// not hand out for a long while: one just behind the last PID it handed
// out (PIDs are allocated upwards and wrap around at pid_max), so that a
// full round of process creation must pass before it is used again.
func freePID(t *testing.T) int {
	t.Helper()
	readInt := func(name string, def int) int {
		if b, err := os.ReadFile(name); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return n
			}
		}
		return def
	}
	top := readInt("/proc/sys/kernel/pid_max", 1<<22)
	last := readInt("/proc/sys/kernel/ns_last_pid", top-1)
	pid := last
	for range 20000 {
		if pid--; pid < 300 {
			pid = top - 1
		}
		p, err := (stale.SystemProcesses{}).Lookup(pid)
		if err == nil && !p.Exists {
			return pid
		}
	}
	t.Fatalf("found no free PID (pid_max %d, last PID %d)", top, last)
	return 0
}

// windowsFewer divides the iterations of a slow contention test by div on
// Windows, where CI runs it under Wine: every file operation is a round trip
// to the Wine server, and a lock directory passed between processes and
// goroutines takes some 15 times longer than on Linux (about 0.4 s a hold).
// The fewer iterations still contend at every step.
func windowsFewer(n, div int) int {
	if runtime.GOOS == "windows" {
		return max(n/div, 2)
	}
	return n
}

// sleeper starts a child process that lives until the test ends and
// returns its PID and start ID as the process table reports them.
func sleeper(t *testing.T) (int, string) {
	t.Helper()
	var cmd *exec.Cmd
	if path, err := exec.LookPath("sleep"); err == nil {
		cmd = exec.Command(path, "3600")
	} else if path, werr := exec.LookPath("cmd.exe"); runtime.GOOS == "windows" && werr == nil {
		// No sleep on Windows: cmd's pause waits for a key on a stdin
		// that stays open until the test ends.
		cmd = exec.Command(path, "/c", "pause")
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
	} else {
		t.Skipf("no sleep command to run as a live child process: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a child: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	p, err := (stale.SystemProcesses{}).Lookup(cmd.Process.Pid)
	if err != nil || !p.Exists || p.StartID == "" {
		t.Fatalf("process table on child %d: %+v, %v", cmd.Process.Pid, p, err)
	}
	return cmd.Process.Pid, p.StartID
}

// paddedRecord is a valid-looking record of n bytes: rec with unknown keys
// (which Parse ignores) inserted before its end line.
func paddedRecord(rec []byte, n int) []byte {
	body := bytes.TrimSuffix(rec, []byte("end\n"))
	var b bytes.Buffer
	b.Write(body)
	for i := 0; b.Len() < n-len("end\n"); i++ {
		line := fmt.Sprintf("x-pad-%d: %s\n", i, strings.Repeat("p", 60))
		b.WriteString(line)
	}
	b.WriteString("end\n")
	return b.Bytes()
}
