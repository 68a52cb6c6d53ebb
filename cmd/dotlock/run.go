package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	dl "github.com/dotlock/dotlock"
)

// lockFlags are the options that say how to take a lock (the main form and
// the lock subcommand).
type lockFlags struct {
	shared     bool
	nonblock   bool
	timeout    time.Duration // 0: none
	conflict   int
	staleAfter time.Duration // 0: the default
	file       bool
	mode       uint32 // --mode: exact permission bits (0: default, after the umask)
	verbose    bool
	help       bool
	version    bool
	slots      int // --slots: hold one of that many slots of a semaphore
}

// applyLockFlag sets what o means; it reports false for options it does
// not know.
func (f *lockFlags) apply(o opt) (bool, error) {
	var err error
	switch o.id {
	case "exclusive":
		f.shared = false
	case "shared":
		f.shared = true
	case "nonblock":
		f.nonblock = true
	case "timeout":
		f.timeout, err = parseSeconds(o.name, o.val)
		if err == nil && f.timeout == 0 {
			f.nonblock = true // -w 0 is -n
		}
	case "conflict":
		f.conflict, err = parseExitCode(o.name, o.val)
	case "stale-after":
		f.staleAfter, err = parseLease(o.name, o.val)
	case "file":
		f.file = true
	case "mode":
		f.mode, err = parseMode(o.name, o.val)
	case "verbose":
		f.verbose = true
	case "slots":
		f.slots, err = parseSlots(o.name, o.val)
	case "fcntl": // flock: fcntl(2) locks; a dotlock lock is the same either way
	case "help":
		f.help = true
	case "version":
		f.version = true
	default:
		return false, nil
	}
	return true, err
}

func (f *lockFlags) check() error {
	switch {
	case f.shared && f.file:
		return usagef("--shared needs the directory format: a lock file (--file) is exclusive only")
	case f.slots > 0 && f.shared:
		return usagef("--slots holds one slot of a semaphore: it has no shared holds (drop -s)")
	case f.slots > 0 && (f.file || f.mode != 0):
		return usagef("--slots makes its own lock files: drop --file and --mode")
	}
	return nil
}

// parseSlots reads --slots N.
func parseSlots(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1<<16 {
		return 0, usagef("invalid %s: '%s' (a number of slots, 1 to 65536)", name, v)
	}
	return n, nil
}

func (f *lockFlags) format() string {
	if f.file {
		return formatFile
	}
	return formatDir
}

// cmdRun is the main form: take the lock, run the command, release; or
// the descriptor forms.
func cmdRun(args []string, stdout, stderr *os.File) int {
	inv, err := parseRun(args)
	if err != nil {
		return failUsage(stderr, err)
	}
	f := &inv.f
	switch {
	case f.help:
		io.WriteString(stdout, usageText)
		return 0
	case f.version:
		fmt.Fprintln(stdout, version)
		return 0
	case inv.unlock && inv.fd < 0 && inv.argv == nil:
		return unlockPath(inv.path, inv.pid, f.file, f.verbose, stderr)
	case inv.unlock:
		if inv.fd >= 0 {
			if code := unlockFD(inv.fd, f.verbose, stderr); code != 0 || inv.argv == nil {
				return code
			}
		}
		return runUnlocked(inv.argv, stderr) // as flock: unlocked, it runs the command
	case inv.argv == nil:
		return lockFD(inv.fd, f, stdout, stderr)
	}
	cmd, code, err := prepareCommand(inv.argv)
	if err != nil {
		return fail(stderr, code, "%v%s", err, formerHint(inv.path))
	}
	t, err := inv.target()
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if inv.fd >= 0 && !inv.closeFD {
		if _, held, _ := heldByFile(t, inv.fd, t.object); held {
			if f.verbose {
				tookLock(stdout, time.Now())
				fmt.Fprintf(stdout, "dotlock: executing %s\n", inv.argv[0])
			}
			return runUnlocked(inv.argv, stderr) // FD's lock is had already (a flock lock is its open file's)
		}
	}
	h, sigc, code := take(t, f, f.staleAfter, stdout, stderr)
	if h == nil {
		return code
	}
	if f.verbose {
		fmt.Fprintf(stdout, "dotlock: executing %s\n", inv.argv[0])
	}
	cmd.Env = append(os.Environ(), "DOTLOCK_TOKEN="+strconv.FormatUint(h.token(), 10), "DOTLOCK_PATH="+t.abs)
	if inv.noFork {
		return execHeld(h, cmd, f, stderr)
	}
	if err := startCommand(cmd); err != nil {
		h.release(f.shared)
		return fail(stderr, startCode(err), "failed to execute %s: %v", inv.argv[0], unwrapExec(err))
	}
	status, wasLost := supervise(cmd, sigc, h.lost(), func() {
		printLine(stderr, "dotlock: lost the lock on %s while the command runs (taken over or removed); the command goes on, unprotected", t.abs)
	})
	if err := h.release(f.shared); err != nil {
		if errors.Is(err, dl.ErrLost) {
			return fail(stderr, exitTempFail, "%v (the command exited with status %d)", err, status)
		}
		return fail(stderr, errorCode(err), "%v", err)
	}
	if wasLost {
		return fail(stderr, exitTempFail, "the lock on %s was lost (the command exited with status %d)", t.abs, status)
	}
	return status
}

// take opens the lock t and takes it as f says (saying how long that took
// with --verbose); a nil handle if it is not had, with the exit status.
func take(t target, f *lockFlags, lease time.Duration, stdout, stderr *os.File) (*handle, chan os.Signal, int) {
	signals := catchSignals() // beside the opening of the handle
	prog := newProgress(stderr, t.abs, f.verbose)
	f.exactMode()
	var h *handle
	var err error
	if t.format == formatSlots {
		h, err = openSemaphore(t.abs, f.slots, f.options(lease, prog))
	} else {
		h, err = openHandle(t.abs, t.format, f.options(lease, prog))
	}
	if err != nil {
		return nil, nil, fail(stderr, errorCode(err), "%v", err)
	}
	sigc := signals()
	began := time.Now()
	sig, err := acquireOrSignal(h, f.shared, f.nonblock, f.timeout, sigc, prog)
	if sig != nil {
		return nil, nil, 128 + signalNumber(sig)
	}
	if err != nil {
		return nil, nil, lockFailed(stderr, prog, f, t.abs, err)
	}
	if f.verbose {
		tookLock(stdout, began)
	}
	return h, sigc, 0
}

// startCommand starts cmd from this goroutine, locked to its thread for
// good: the command's parent-death signal (commandAttr) follows the thread
// that started it, not the process, and a Go thread ends before the process
// only with a goroutine locked to it. Locked only now, not from the start
// of main: a locked goroutine's every wait hands its thread's work over to
// another and back (0.14 ms of `dotlock -n L true`, measured).
func startCommand(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	return commandUmask(cmd.Start)
}

// catchSignals starts catching the signals passed on to the command, on a
// goroutine of its own; the function it returns waits for that and gives
// the channel they arrive on. os/signal's first Notify starts a thread of
// its own and waits for it to be running: a third of a millisecond here,
// which so overlaps the opening of the lock's handle. Only take calls it,
// and it reads the channel: a signal caught before the acquire begins is
// acted on then (a path that never read the channel would lose it).
func catchSignals() func() chan os.Signal {
	sigc, ready := make(chan os.Signal, 8), make(chan struct{})
	go func() {
		signal.Notify(sigc, forwardSignals...)
		close(ready)
	}()
	return func() chan os.Signal {
		<-ready
		return sigc
	}
}

// target is where the lock lives: its path's, or its descriptor's file's.
func (inv *invocation) target() (target, error) {
	if inv.f.slots > 0 {
		// A semaphore's directory is dotlock's own (package semaphore
		// refuses one holding anything else): no companion.
		abs, err := filepath.Abs(inv.path)
		if err != nil {
			return target{}, &typeError{exitOSErr, err.Error()}
		}
		return target{abs: abs, format: formatSlots}, nil
	}
	if inv.fd < 0 {
		return checkPath(inv.path, inv.f.format())
	}
	t, _, err := fdTarget(inv.fd, inv.f.format())
	if err == nil && inv.closeFD {
		err = closeOnExec(inv.fd) // -o: the command does not get it
	}
	return t, err
}

// tookLock prints flock's --verbose line, on stdout as flock.
func tookLock(stdout io.Writer, began time.Time) {
	d := time.Since(began)
	fmt.Fprintf(stdout, "dotlock: getting lock took %d.%06d seconds\n", d/time.Second, (d%time.Second)/time.Microsecond)
}

// supervise waits for the started command, passing on the signals that
// arrive in sigc; onLost runs if lost closes meanwhile.
func supervise(cmd *exec.Cmd, sigc <-chan os.Signal, lost <-chan struct{}, onLost func()) (status int, wasLost bool) {
	waitc := make(chan struct{})
	go func() {
		cmd.Wait()
		close(waitc)
	}()
	for {
		select {
		case s := <-sigc:
			forward(cmd.Process, s)
		case <-lost:
			lost, wasLost = nil, true
			onLost()
		case <-waitc:
			return exitStatus(cmd.ProcessState), wasLost
		}
	}
}

// runUnlocked runs the command without a lock (-u with a command).
func runUnlocked(argv []string, stderr *os.File) int {
	cmd, code, err := prepareCommand(argv)
	if err != nil {
		return fail(stderr, code, "%v", err)
	}
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, forwardSignals...)
	if err := startCommand(cmd); err != nil {
		return fail(stderr, startCode(err), "failed to execute %s: %v", argv[0], unwrapExec(err))
	}
	status, _ := supervise(cmd, sigc, nil, nil)
	return status
}

// lockFailed reports a lock that was not had, and returns the exit status.
func lockFailed(stderr *os.File, prog *progress, f *lockFlags, abs string, err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		if f.verbose || prog.tty {
			printLine(stderr, "dotlock: timed out after %v waiting for %s: %s", f.timeout, abs, describeBlock(prog.lastBlock(), time.Now()))
		}
		return f.conflict
	case errors.Is(err, dl.ErrLocked):
		if f.verbose || prog.tty {
			var le *dl.LockedError
			errors.As(err, &le)
			printLine(stderr, "dotlock: %s: %s", abs, describeBlock(le, time.Now()))
		}
		return f.conflict
	}
	return fail(stderr, errorCode(err), "%v", err)
}

// prepareCommand finds the command as a shell would, so that a command that
// cannot be run fails before the lock is taken: 69 (EX_UNAVAILABLE), as
// flock.
func prepareCommand(argv []string) (*exec.Cmd, int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil && !errors.Is(err, exec.ErrDot) {
		switch {
		case errors.Is(err, exec.ErrNotFound):
			return nil, exitUnavailable, fmt.Errorf("failed to execute %s: command not found", argv[0])
		case errors.Is(err, fs.ErrNotExist):
			return nil, exitUnavailable, fmt.Errorf("failed to execute %s: no such file", argv[0])
		}
		return nil, exitUnavailable, fmt.Errorf("failed to execute %s: %v", argv[0], unwrapExec(err))
	}
	cmd := &exec.Cmd{Path: path, Args: argv}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = commandAttr()
	return cmd, 0, nil
}

func startCode(err error) int {
	if errors.Is(err, syscall.ENOMEM) {
		return exitOSErr
	}
	return exitUnavailable // as flock
}

// unwrapExec drops the path that exec's errors repeat.
func unwrapExec(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// exitStatus is a finished command's status as a shell reports it.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return exitOSErr
	}
	if n, ok := signalled(ps); ok {
		return 128 + n
	}
	if c := ps.ExitCode(); c >= 0 {
		return c
	}
	return exitOSErr
}
