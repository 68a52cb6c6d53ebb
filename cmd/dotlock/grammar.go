package main

// The command line is flock(1)'s: every argument list flock accepts means
// what it means to flock. dotlock's own operations are options flock does
// not have, given first (--status, --break, --lock), or -u with a lock
// path, where flock would fail ("invalid file descriptor").

import (
	"os"
	"runtime"
	"strconv"
)

var lockSpecs = []optSpec{
	{id: "exclusive", short: "xe", long: []string{"exclusive"}, flock: true},
	{id: "shared", short: "s", long: []string{"shared"}, flock: true},
	{id: "nonblock", short: "n", long: []string{"nonblocking", "nb", "nonblock"}, flock: true},
	{id: "timeout", short: "w", long: []string{"timeout", "wait"}, arg: true, flock: true},
	{id: "conflict", short: "E", long: []string{"conflict-exit-code"}, arg: true, flock: true},
	{id: "verbose", short: "v", long: []string{"verbose"}, flock: true},
	{id: "help", short: "h", long: []string{"help"}, flock: true},
	{id: "version", short: "V", long: []string{"version"}, flock: true},
	{id: "fcntl", long: []string{"fcntl"}, flock: true},
	{id: "stale-after", long: []string{"stale-after"}, arg: true},
	{id: "file", long: []string{"file"}},
	{id: "mode", long: []string{"mode"}, arg: true},
}

// runSpecs are the main form's: lockSpecs and the rest of flock's.
var runSpecs = append(append([]optSpec{}, lockSpecs...),
	optSpec{id: "unlock", short: "u", long: []string{"unlock"}, flock: true},
	optSpec{id: "close", short: "o", long: []string{"close"}, flock: true},
	optSpec{id: "no-fork", short: "F", long: []string{"no-fork"}, flock: true},
	optSpec{id: "fd", long: []string{"fd"}, arg: true, flock: true},
	optSpec{id: "start", long: []string{"start"}, arg: true, flock: true},
	optSpec{id: "length", long: []string{"length"}, arg: true, flock: true},
	optSpec{id: "command", short: "c", long: []string{"command"}, arg: true},
	optSpec{id: "pid", long: []string{"pid"}, arg: true}, // with -u PATH
	optSpec{id: "slots", long: []string{"slots"}, arg: true},
	optSpec{id: "operation", long: []string{"status", "break", "lock"}},
)

// invocation is the main form as given.
type invocation struct {
	f       lockFlags
	path    string   // the lock path; "" with a descriptor
	fd      int      // the descriptor (FD, --fd FD); -1 if none
	argv    []string // the command; nil for FD and -u alone
	unlock  bool     // -u
	noFork  bool     // -F
	closeFD bool     // -o
	pid     int      // --pid, with -u PATH
}

// parseRun parses the main form, as flock 2.43 does:
//
//	[options] PATH COMMAND [ARG...]    [options] PATH -c COMMAND
//	[options] FD                       [options] --fd FD COMMAND [ARG...]
//	[options] --fd FD -c COMMAND       -u [--pid PID] PATH (dotlock's)
func parseRun(args []string) (inv invocation, err error) {
	inv.f.conflict, inv.fd = exitConflict, -1
	opts, rest, err := getopt(args, runSpecs, true)
	if err != nil {
		return inv, err
	}
	var command *string
	var misplaced error // reported unless --help
	for _, o := range opts {
		known, err := inv.f.apply(o)
		if err != nil {
			return inv, err
		}
		if known {
			continue
		}
		switch o.id {
		case "unlock":
			inv.unlock = true
		case "close":
			inv.closeFD = true
		case "no-fork":
			inv.noFork = true
		case "fd":
			if inv.fd, err = parseFD(o.name, o.val); err != nil {
				return inv, err
			}
		case "start", "length":
			misplaced = usagef("%s: byte-range locks are not supported: a dotlock lock is the whole file (drop --start and --length)", o.name)
		case "operation":
			misplaced = usagef("%s comes first: dotlock %s [options] LOCKPATH", o.name, o.name)
		case "command":
			v := o.val
			command = &v
		case "pid":
			if inv.pid, err = parsePID(o.name, o.val); err != nil {
				return inv, err
			}
		}
	}
	if inv.f.help || inv.f.version {
		return inv, nil
	}
	if misplaced != nil {
		return inv, misplaced
	}
	if err := inv.f.check(); err != nil {
		return inv, err
	}
	if inv.noFork && inv.closeFD {
		return inv, usagef("the --no-fork and --close options are incompatible")
	}
	if inv.noFork && runtime.GOOS == "windows" {
		return inv, usagef("-F/--no-fork needs exec, which Windows does not have: drop -F")
	}
	return inv, inv.operands(rest, command)
}

// operands reads what follows the options.
func (inv *invocation) operands(rest []string, command *string) error {
	switch {
	case command != nil: // -c among the options: the lock is --fd's
		if len(rest) != 0 {
			return usagef("-c requires exactly one command argument")
		}
		if inv.fd < 0 {
			return usagef("missing file descriptor, file or directory (-c before the lock path needs --fd FD)")
		}
		inv.argv = shellCommand(*command)
	case inv.fd >= 0:
		if len(rest) == 0 && !inv.unlock {
			return usagef("missing command (dotlock --fd FD COMMAND, or dotlock FD)")
		}
		inv.argv = rest
	case len(rest) >= 2:
		inv.path, inv.argv = rest[0], rest[1:]
		if inv.path == "" {
			return usagef("empty lock path")
		}
		if inv.argv[0] == "-c" || inv.argv[0] == "--command" {
			if len(inv.argv) != 2 {
				return usagef("%s requires exactly one command argument", inv.argv[0])
			}
			inv.argv = shellCommand(inv.argv[1])
		}
	case len(rest) == 1:
		fd, err := parseFD("file descriptor", rest[0])
		switch {
		case err == nil:
			inv.fd = fd
		case inv.unlock && rest[0] != "":
			inv.path = rest[0] // dotlock -u PATH: release what --lock took
		default:
			return usagef("no command given: dotlock [options] %s COMMAND [ARG...], or a file descriptor number", rest[0])
		}
	default:
		return usagef("missing file descriptor, file or directory")
	}
	if inv.pid != 0 && !(inv.unlock && inv.path != "" && inv.argv == nil) {
		return usagef("--pid goes with --lock, or with -u LOCKPATH")
	}
	if inv.f.slots > 0 && (inv.fd >= 0 || inv.unlock || inv.noFork || inv.argv == nil) {
		return usagef("--slots N takes a semaphore's directory and a command: dotlock --slots N DIR COMMAND [ARG...]")
	}
	return nil
}

// shellCommand runs c as flock does: with $SHELL -c.
func shellCommand(c string) []string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return []string{sh, "-c", c}
	}
	return defaultShell(c)
}

// parseFD reads a file descriptor number: digits only, as flock.
func parseFD(name, v string) (int, error) {
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1, usagef("invalid %s: '%s'", name, v)
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || v == "" || n > 1<<31-1 {
		return -1, usagef("invalid %s: '%s'", name, v)
	}
	return n, nil
}
