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
}

var lockSpecs = []optSpec{
	{id: "exclusive", short: "xe", long: []string{"exclusive"}},
	{id: "shared", short: "s", long: []string{"shared"}},
	{id: "nonblock", short: "n", long: []string{"nonblock", "nb"}},
	{id: "timeout", short: "w", long: []string{"timeout", "wait"}, arg: true},
	{id: "conflict", short: "E", long: []string{"conflict-exit-code"}, arg: true},
	{id: "stale-after", long: []string{"stale-after"}, arg: true},
	{id: "file", long: []string{"file"}},
	{id: "mode", long: []string{"mode"}, arg: true},
	{id: "verbose", short: "v", long: []string{"verbose"}},
	{id: "help", short: "h", long: []string{"help"}},
	{id: "version", short: "V", long: []string{"version"}},
}

// runSpecs are the main form's: lockSpecs and flock's options that mean
// nothing here or cannot be had.
var runSpecs = append(append([]optSpec{}, lockSpecs...),
	optSpec{id: "close", short: "o", long: []string{"close"}},
	optSpec{id: "no-fork", short: "F", long: []string{"no-fork"}},
	optSpec{id: "unlock", short: "u", long: []string{"unlock"}},
	optSpec{id: "command", short: "c", long: []string{"command"}, arg: true},
)

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
	if f.shared && f.file {
		return usagef("--shared needs the directory format: a lock file (--file) is exclusive only")
	}
	return nil
}

func (f *lockFlags) format() string {
	if f.file {
		return formatFile
	}
	return formatDir
}

// parseRun parses the main form: [options] LOCKPATH COMMAND [ARG...], or
// [options] LOCKPATH -c COMMAND.
func parseRun(args []string) (f lockFlags, lockPath string, argv []string, err error) {
	f.conflict = exitConflict
	opts, rest, err := getopt(args, runSpecs, true)
	if err != nil {
		return f, "", nil, err
	}
	for _, o := range opts {
		known, err := f.apply(o)
		if err != nil {
			return f, "", nil, err
		}
		if known {
			continue
		}
		switch o.id {
		case "close": // flock: close the lock's descriptor in the command; dotlock gives it none
		case "no-fork":
			return f, "", nil, usagef("%s is not supported: dotlock stays to heartbeat and release the lock, so the command cannot replace it; drop %s", o.name, o.name)
		case "unlock":
			return f, "", nil, usagef("%s unlocks a file descriptor, which dotlock does not lock: use 'dotlock unlock LOCKPATH' after 'dotlock lock'", o.name)
		case "command":
			return f, "", nil, usagef("%s comes after the lock path: dotlock [options] LOCKPATH -c 'COMMAND'", o.name)
		}
	}
	if f.help || f.version {
		return f, "", nil, nil
	}
	if err := f.check(); err != nil {
		return f, "", nil, err
	}
	switch len(rest) {
	case 0:
		return f, "", nil, usagef("no lock path given")
	case 1:
		if _, err := strconv.Atoi(rest[0]); err == nil {
			return f, "", nil, usagef("dotlock locks paths, not file descriptors (flock %s): use 'dotlock lock --pid $$ LOCKPATH' and 'dotlock unlock LOCKPATH'", rest[0])
		}
		return f, "", nil, usagef("no command given: dotlock [options] %s COMMAND [ARG...]", rest[0])
	}
	lockPath = rest[0]
	if err := checkLockArg(lockPath); err != nil {
		return f, "", nil, err
	}
	argv = rest[1:]
	if argv[0] == "-c" || argv[0] == "--command" {
		if len(argv) != 2 {
			return f, "", nil, usagef("%s requires exactly one command argument", argv[0])
		}
		if sh := os.Getenv("SHELL"); sh != "" {
			argv = []string{sh, "-c", argv[1]} // as flock does
		} else {
			argv = defaultShell(argv[1])
		}
	}
	return f, lockPath, argv, nil
}

// cmdRun is the main form: take the lock, run the command, release.
func cmdRun(args []string, stdout, stderr *os.File) int {
	f, lockPath, argv, err := parseRun(args)
	if err != nil {
		return failUsage(stderr, err)
	}
	if f.help {
		io.WriteString(stdout, usageText)
		return 0
	}
	if f.version {
		fmt.Fprintln(stdout, version)
		return 0
	}
	cmd, code, err := prepareCommand(argv)
	if err != nil {
		return fail(stderr, code, "%v", err)
	}
	abs, err := checkPath(lockPath, f.format())
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	prog := newProgress(stderr, abs, f.verbose)
	f.exactMode()
	h, err := openHandle(abs, f.format(), f.options(f.staleAfter, prog))
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, forwardSignals...)
	began := time.Now()
	sig, err := acquireOrSignal(h, f.shared, f.nonblock, f.timeout, sigc, prog)
	if sig != nil {
		return 128 + signalNumber(sig)
	}
	if err != nil {
		return lockFailed(stderr, prog, &f, abs, err)
	}
	if f.verbose {
		prog.say("acquired %s (token %d) after %v", abs, h.token(), time.Since(began).Round(time.Millisecond))
	}
	cmd.Env = append(os.Environ(), "DOTLOCK_TOKEN="+strconv.FormatUint(h.token(), 10), "DOTLOCK_PATH="+abs)
	if err := commandUmask(cmd.Start); err != nil {
		h.release(f.shared)
		return fail(stderr, startCode(err), "%s: %v", argv[0], unwrapExec(err))
	}
	waitc := make(chan struct{})
	go func() {
		cmd.Wait()
		close(waitc)
	}()
	lost := h.lost()
	wasLost := false
loop:
	for {
		select {
		case s := <-sigc:
			forward(cmd.Process, s)
		case <-lost:
			lost, wasLost = nil, true
			printLine(stderr, "dotlock: lost the lock on %s while the command runs (taken over or removed); the command goes on, unprotected", abs)
		case <-waitc:
			break loop
		}
	}
	status := exitStatus(cmd.ProcessState)
	if err := h.release(f.shared); err != nil {
		if errors.Is(err, dl.ErrLost) {
			return fail(stderr, exitTempFail, "%v (the command exited with status %d)", err, status)
		}
		return fail(stderr, errorCode(err), "%v", err)
	}
	if wasLost {
		return fail(stderr, exitTempFail, "the lock on %s was lost (the command exited with status %d)", abs, status)
	}
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
// cannot be run fails before the lock is taken: 127 if it is not found, 126
// if it cannot be executed.
func prepareCommand(argv []string) (*exec.Cmd, int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil && !errors.Is(err, exec.ErrDot) {
		switch {
		case errors.Is(err, exec.ErrNotFound):
			return nil, exitNotFound, fmt.Errorf("%s: command not found", argv[0])
		case errors.Is(err, fs.ErrNotExist):
			return nil, exitNotFound, fmt.Errorf("%s: no such file", argv[0])
		}
		return nil, exitCannotExec, fmt.Errorf("%s: cannot run it: %v", argv[0], unwrapExec(err))
	}
	cmd := &exec.Cmd{Path: path, Args: argv}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = commandAttr()
	return cmd, 0, nil
}

func startCode(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitNotFound
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
		return exitCannotExec
	}
	return exitOSErr
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
