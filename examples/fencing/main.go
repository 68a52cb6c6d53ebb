// Command fencing shows why a lock's fencing token matters: a holder that is
// paused loses its lock when its lease lapses, and when it wakes up its late
// write — carrying its old token — is rejected by storage that remembers the
// highest token it has accepted.
//
//	go run ./examples/fencing
//
// The story, with real processes:
//
//  1. A holder process takes the lock (lockfile, lease 1 s, heartbeat every
//     250 ms) and writes with its token.
//  2. It is paused with SIGSTOP, standing for a long GC pause, a frozen VM or
//     a network partition: its heartbeat stops.
//  3. A taker on "another host" sees the heartbeat stand still, waits out the
//     lease and takes the lock, with a greater token, and writes.
//  4. The holder is resumed with SIGCONT and, not knowing, sends the write it
//     was about to make. Storage rejects it: its token is older than the
//     taker's. The holder then finds out: its Lost channel is closed and
//     Unlock returns ErrLost.
//
// A lock alone cannot prevent step 4: the holder is paused between checking
// that it holds the lock and writing, and no check it makes can cover that
// gap. The token can, if the storage checks it — a database column compared
// in the UPDATE, an object store's conditional write, a file that records the
// last token as the jobqueue example's results do.
//
// The taker runs in this (parent) process with a liveness checker that
// gives it another host name, as a second host sharing the directory over
// NFS would have. That matters: on one host, a stopped process is still alive
// (its PID runs), and dotlock never takes the lock of a live local process,
// however long it is stopped. Across hosts no process table can be asked,
// so the lease decides.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/lockfile"
	"github.com/dotlock/dotlock/stale"
)

const (
	lease     = time.Second            // WithStaleAfter: how long a still heartbeat is trusted
	heartbeat = 250 * time.Millisecond // WithHeartbeat: how often the holder proves it lives
	patience  = 2 * time.Minute        // give up on a step that never comes (a broken machine)
)

var holderLock = flag.String("holder", "", "run as the holder of this lock (used by the example itself)")

func main() {
	flag.Parse()
	var err error
	if *holderLock != "" {
		err = holder(*holderLock, os.Stdin, os.Stdout)
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fencing:", err)
		os.Exit(1)
	}
}

// Storage is the resource the lock protects. It accepts a write only if its
// token is at least the highest it has accepted: a fenced write. In real life
// it is another service; here it lives in the parent process, and the holder
// reaches it through its stdin and stdout.
type Storage struct {
	mu      sync.Mutex
	highest uint64
	value   string
}

// Write stores value if token is not older than every token seen so far.
func (s *Storage) Write(token uint64, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token < s.highest {
		return fmt.Errorf("rejected: token %d is older than %d, the highest accepted", token, s.highest)
	}
	s.highest, s.value = token, value
	return nil
}

// holder is the child process. It speaks a line protocol with the parent:
//
//	-> locked TOKEN        <- (nothing)
//	-> write TOKEN VALUE   <- ok | rejected: ...
//	<- go                  (after the pause: carry on)
//	-> lost | notlost      whether Lost() was closed in time
//	-> unlock ERROR|ok
func holder(path string, in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	l, err := lockfile.New(path, dotlock.WithStaleAfter(lease), dotlock.WithHeartbeat(heartbeat))
	if err != nil {
		return err
	}
	if err := l.TryLock(); err != nil {
		return err
	}
	token := l.Token()
	fmt.Fprintf(out, "locked %d\n", token)
	write := func(value string) (string, error) {
		fmt.Fprintf(out, "write %d %s\n", token, value)
		return r.ReadString('\n')
	}
	if _, err := write("report-draft-by-holder"); err != nil {
		return err
	}
	// Here the parent pauses us (SIGSTOP) and later resumes us (SIGCONT),
	// then says "go". We do not know we were paused: we carry on with the
	// write we were about to make, as any program would.
	if line, err := r.ReadString('\n'); err != nil || line != "go\n" {
		return fmt.Errorf("waiting for go: %q, %v", line, err)
	}
	if _, err := write("report-final-by-holder"); err != nil {
		return err
	}
	select {
	case <-l.Lost():
		fmt.Fprintln(out, "lost")
	case <-time.After(patience):
		fmt.Fprintln(out, "notlost")
	}
	if err := l.Unlock(); err != nil {
		fmt.Fprintf(out, "unlock %v (ErrLost: %v)\n", err, errors.Is(err, dotlock.ErrLost))
	} else {
		fmt.Fprintln(out, "unlock ok")
	}
	return nil
}

func run() error {
	dir, err := os.MkdirTemp("", "fencing-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "report.lock")
	var storage Storage
	step := 0
	say := func(format string, a ...any) {
		step++
		fmt.Printf("%d. "+format+"\n", append([]any{step}, a...)...)
	}
	fmt.Printf("lock %s: lease %v, heartbeat every %v\n\n", path, lease, heartbeat)

	// The holder: this program again, as a child process.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-holder", path)
	cmd.Stderr = os.Stderr
	toHolder, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill() // on an error path; a no-op once it has exited
	lines := make(chan []string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.Fields(sc.Text())
		}
	}()
	next := func(want string) ([]string, error) {
		select {
		case f, ok := <-lines:
			if !ok {
				return nil, fmt.Errorf("the holder exited while we waited for %q", want)
			}
			if len(f) == 0 || f[0] != want {
				return nil, fmt.Errorf("the holder said %q, want %q", f, want)
			}
			return f, nil
		case <-time.After(patience):
			return nil, fmt.Errorf("no %q from the holder in %v", want, patience)
		}
	}
	// serveWrite answers one of the holder's writes from storage.
	serveWrite := func() (uint64, string, error) {
		f, err := next("write")
		if err != nil {
			return 0, "", err
		}
		if len(f) != 3 {
			return 0, "", fmt.Errorf("bad write %q", f)
		}
		token, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, "", err
		}
		reply := "ok"
		if err := storage.Write(token, f[2]); err != nil {
			reply = err.Error()
		}
		_, err = fmt.Fprintln(toHolder, reply)
		return token, reply, err
	}

	f, err := next("locked")
	if err != nil {
		return err
	}
	say("holder (pid %d) takes the lock: token %s", cmd.Process.Pid, f[1])
	oldToken, reply, err := serveWrite()
	if err != nil {
		return err
	}
	say("holder writes with token %d: storage says %s", oldToken, reply)
	if reply != "ok" {
		return fmt.Errorf("storage refused the holder's first write: %s", reply)
	}

	if err := pause(cmd.Process); err != nil {
		return err
	}
	say("holder is paused (SIGSTOP) just before its next write: its heartbeat stops")

	// The taker, as another host sees things: the holder's PID means nothing
	// here, so only the lease can tell whether it lives.
	id, err := stale.LocalIdentity()
	if err != nil {
		return err
	}
	elsewhere := &stale.Checker{
		Local:     stale.Identity{Host: "other-" + id.Host, BootID: id.BootID, PIDNS: id.PIDNS},
		Processes: stale.SystemProcesses{},
	}
	var brokeBecause string
	taker, err := lockfile.New(path, dotlock.WithStaleAfter(lease), lockcore.WithChecker(elsewhere),
		dotlock.WithOnBreak(func(victim *stale.Owner, reason string) { brokeBecause = reason }))
	if err != nil {
		return err
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := taker.Lock(ctx); err != nil {
		return fmt.Errorf("taker: %w", err)
	}
	say("taker on another host takes the lock after %v (%s): token %d",
		time.Since(began).Round(10*time.Millisecond), brokeBecause, taker.Token())
	if taker.Token() <= oldToken {
		return fmt.Errorf("taker's token %d is not greater than the holder's %d", taker.Token(), oldToken)
	}
	if err := storage.Write(taker.Token(), "report-final-by-taker"); err != nil {
		return fmt.Errorf("storage refused the taker's write: %w", err)
	}
	say("taker writes with token %d: storage says ok", taker.Token())

	if err := resume(cmd.Process); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(toHolder, "go"); err != nil {
		return err
	}
	lateToken, reply, err := serveWrite()
	if err != nil {
		return err
	}
	say("holder resumes (SIGCONT) and sends its late write with token %d: storage says %s", lateToken, reply)
	if reply == "ok" {
		return fmt.Errorf("storage accepted the late write of token %d after token %d", lateToken, taker.Token())
	}
	if _, err := next("lost"); err != nil {
		return err
	}
	f, err = next("unlock")
	if err != nil {
		return err
	}
	unlock := strings.Join(f[1:], " ")
	say("holder's Lost() channel is closed; its Unlock says: %s", unlock)
	if !strings.HasSuffix(unlock, "(ErrLost: true)") {
		return fmt.Errorf("holder's Unlock: %s, want ErrLost", unlock)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("holder: %v", err)
	}

	if o, err := taker.Owner(); err != nil || o.Token != taker.Token() {
		return fmt.Errorf("the taker no longer holds the lock: %v, %v", o, err)
	}
	if err := taker.Unlock(); err != nil {
		return fmt.Errorf("taker: %w", err)
	}
	fmt.Printf("\nstorage holds %q (token %d): the late write did not overwrite it\n", storage.value, storage.highest)
	if storage.value != "report-final-by-taker" {
		return errors.New("FAILED: the taker's write was lost")
	}
	fmt.Println("ok: the paused holder lost its lease, and its late write was rejected by its token")
	return nil
}
