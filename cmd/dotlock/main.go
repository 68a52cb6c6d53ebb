// Command dotlock runs a command while holding a lock that works on network
// filesystems (NFS, SMB, sshfs, cluster filesystems): a flock(1)
// replacement for scripts.
//
//	dotlock [options] LOCKPATH COMMAND [ARG...]
//	dotlock [options] LOCKPATH -c 'SHELL COMMAND'
//	dotlock [options] FD            dotlock -u FD
//	dotlock [options] --fd FD COMMAND [ARG...]
//	dotlock --status [--json] LOCKPATH
//	dotlock --break [--force] [--stale-after DUR] LOCKPATH
//	dotlock --lock [--pid PID] [options] LOCKPATH
//	dotlock -u [--pid PID] LOCKPATH
//
// The command line is flock(1)'s (every argument list flock accepts means
// the same), so that flock -> dotlock is a one-word change. An existing
// file or directory at LOCKPATH is never changed: its lock is the companion
// LOCKPATH.dotlock (companion.go). The lock is a directory (package
// lockdir), or with --file a file created with O_EXCL (package lockfile),
// and holds an owner record: a lock whose holder died is reclaimed (on this
// host at once, on other hosts when its heartbeat lease lapses), a live
// holder's never. Run dotlock --help for the options and exit codes;
// README.md has the migration guide from flock.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"

	dl "github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/semaphore"
	"github.com/dotlock/dotlock/stale"
)

const version = "dotlock 0.1"

// Exit codes. flock(1)'s where it has one (1 for a conflict, 64 for usage,
// 66 and 73 for a lock it cannot create); the others from sysexits.h.
const (
	exitConflict    = 1  // the lock is held (-n, -w): default of -E
	exitUsage       = 64 // EX_USAGE: bad command line
	exitDataErr     = 65 // EX_DATAERR: the lock path holds something that is not a lock of this format
	exitNoInput     = 66 // EX_NOINPUT: the lock's directory does not exist; a lock name too long
	exitUnavailable = 69 // EX_UNAVAILABLE: the command cannot be run (flock's)
	exitSoftware    = 70 // EX_SOFTWARE: internal error
	exitOSErr       = 71 // EX_OSERR: other system error (cannot start a process, ...)
	exitCantCreat   = 73 // EX_CANTCREAT: read-only filesystem, no space, quota
	exitIOErr       = 74 // EX_IOERR: I/O error on the lock
	exitTempFail    = 75 // EX_TEMPFAIL: the lock was lost (taken over) while held
	exitNoPerm      = 77 // EX_NOPERM: permission denied on the lock
)

const usageText = `Usage:
  dotlock [options] LOCKPATH COMMAND [ARG...]
  dotlock [options] LOCKPATH -c 'SHELL COMMAND'
  dotlock [options] FD                         (Linux)
  dotlock [options] --fd FD COMMAND [ARG...]   (Linux)
  dotlock [options] --fd FD -c 'SHELL COMMAND' (Linux)
  dotlock -u FD                                (Linux)
  dotlock --slots N [options] DIR COMMAND [ARG...]
  dotlock --lock [--pid PID] [options] LOCKPATH
  dotlock -u [--pid PID] [--file] [--verbose] LOCKPATH
  dotlock --status [--json] [--file] LOCKPATH
  dotlock --break [-f|--force] [--stale-after DUR] [--file] [-v] LOCKPATH

Run a command while holding a lock that works on network filesystems; the
command line is flock(1)'s. A LOCKPATH that is free, or a dotlock lock, is
the lock; an existing file or directory is never changed: its lock is
LOCKPATH.dotlock beside it. FD is a descriptor the calling shell has open on
a file (9>FILE): the lock is FILE.dotlock, held until the shell closes FD or
exits, or dotlock -u FD.

Options:
  -x, -e, --exclusive       exclusive lock (default)
  -s, --shared              shared (reader) lock; excludes -x on the same path
  -u, --unlock              release FD's lock; with LOCKPATH alone, what
                            --lock took
  -n, --nb, --nonblocking, --nonblock
                            fail at once if the lock is held
  -w, --wait, --timeout SECS  give up after SECS (fractional; 0 means -n)
  -E, --conflict-exit-code N  exit code when the lock is not had (default 1)
  -o, --close               the command does not get FD (--fd); dotlock passes
                            no lock descriptor in any case
  -c, --command CMD         run CMD with $SHELL -c
  -F, --no-fork             hand the lock to a keeper for this process, then
                            become COMMAND (exec)
      --fd FD               lock FD's file around COMMAND
      --fcntl               accepted: a dotlock lock is the same either way
      --start N, --length N refused: byte-range locks are not supported
      --verbose, -v         print flock's lines on stdout (getting lock took
                            N seconds, executing CMD); on stderr, who holds
                            the lock while waiting, and breaks
      --stale-after DUR     lease for holders on other hosts (default 30s)
      --file                the lock is a file made with O_EXCL, not a directory
                            (exclusive only)
      --mode MODE           exact permission bits of the lock's files, octal
                            (default 0666, and 0777 for directories, less the
                            umask); see Sharing below
      --pid PID             with --lock and -u LOCKPATH: the holder process
      --slots N             at most N at once: hold one of the N slots of the
                            semaphore in DIR (made if missing; every user gives
                            the same N; 65 if DIR records another, or holds
                            files of its own); --status DIR lists the slots
  -h, --help                this help
  -V, --version             the version

Operations (first on the command line; flock has none of these options):
  --status  who holds the lock and whether they are alive; exit 0 held, 1 free
            (a semaphore's DIR: each slot; 0 if one is held)
  --break   remove the lock if its holder is dead; --force: even if alive
  --lock    take the lock for process PID (default: the calling process) and
            return; it is released by -u LOCKPATH, or when PID exits. PID must
            be a process this user may signal (77 if it is another user's)

Sharing between users: every user of a lock must be able to write its
directory, and to remove the others' files there. In a team directory: a
shared group, the directory setgid to it (chmod 2775), and umask 002 or
--mode 0660. In a sticky directory such as /tmp, users take turns on a lock,
but no one but its owner (or root) can remove a dead holder's lock: dotlock
says whose it is. Anyone who can write the directory can block a lock.

Exit status: the command's (128+N if it died of signal N); 1 (or -E N) if the
lock is held; 64 usage; 65 the path is not a lock of this format, or FD is
not open on a file; 66 no such directory, or a lock name too long; 69 the
command cannot be run; 70 internal error; 71 system error; 73 cannot create
(read-only, full); 74 I/O error; 75 the lock was lost while held; 77
permission denied.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit status.
func run(args []string, stdout, stderr *os.File) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = fail(stderr, exitSoftware, "internal error: %v", r)
		}
	}()
	if len(args) > 0 {
		// Options flock does not have, first: no argument list flock
		// accepts begins with one.
		switch args[0] {
		case "--status":
			return cmdStatus(args[1:], stdout, stderr)
		case "--break":
			return cmdBreak(args[1:], stdout, stderr)
		case "--lock":
			return cmdLock(args[1:], stderr)
		case keeperCommand:
			return cmdKeeper(args[1:])
		}
	}
	return cmdRun(args, stdout, stderr)
}

// formerHint explains a command that cannot be run after a lock path
// named as one of dotlock's former subcommands (dotlock status x.lock runs
// x.lock under ./status, as flock would).
func formerHint(name string) string {
	switch name {
	case "status", "break", "lock":
		return fmt.Sprintf(" (for dotlock's own '%s', write dotlock --%s)", name, name)
	case "unlock":
		return " (to release what dotlock --lock took, write dotlock -u LOCKPATH)"
	}
	return ""
}

// checkLockArg refuses an empty lock path.
func checkLockArg(p string) error {
	if p == "" {
		return usagef("empty lock path")
	}
	return nil
}

// fail prints a one-line message and returns code.
func fail(stderr io.Writer, code int, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	msg = strings.ReplaceAll(msg, "\n", " ")
	printLine(stderr, "dotlock: %s", msg)
	return code
}

// printLine prints one line for people. Everything in it is escaped with
// stale.Printable: it shows what anyone who can write the lock's directory
// may have planted (a record's host, names of entries, the engine's errors
// quoting them), and the lock path, which may hold anything too.
func printLine(w io.Writer, format string, a ...any) {
	io.WriteString(w, stale.Printable(fmt.Sprintf(format, a...))+"\n")
}

// escapeJSON escapes, in encoding/json's output, what it leaves raw though a
// terminal would act on it: DEL, the C1 controls and other unprintable runes
// (JSON requires only U+0000 to U+001F escaped). The output is valid UTF-8
// (Marshal replaced invalid bytes), and such runes occur only in strings,
// where \uXXXX means the same rune.
func escapeJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r < 0x7f || strconv.IsPrint(r) {
			if out != nil {
				out = append(out, b[i:i+n]...)
			}
			i += n
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+32), b[:i]...)
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}

// failUsage prints a usage error.
func failUsage(stderr io.Writer, err error) int {
	return fail(stderr, exitUsage, "%v (see dotlock --help)", err)
}

// errorCode is the exit status for a lock error that is not a conflict.
func errorCode(err error) int {
	var re *stale.RecordError
	var te *typeError
	var se *semaphore.SizeError
	switch {
	case errors.As(err, &te):
		return te.code
	case errors.Is(err, dl.ErrLost):
		return exitTempFail
	case errors.Is(err, dl.ErrNotLock):
		return exitDataErr
	case errors.Is(err, fs.ErrPermission):
		return exitNoPerm
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return exitCantCreat
	case errors.Is(err, syscall.EIO):
		return exitIOErr
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENAMETOOLONG):
		return exitNoInput // ENAMETOOLONG: as flock(1)'s open failing
	case errors.Is(err, syscall.ELOOP), errors.As(err, &re), errors.As(err, &se):
		return exitDataErr
	}
	return exitOSErr
}

// typeError is a lock path that cannot be used, found before touching it.
type typeError struct {
	code int
	msg  string
}

func (e *typeError) Error() string { return e.msg }

// Lock formats.
const (
	formatDir   = "dir"
	formatFile  = "file"
	formatSlots = "slots" // --slots: a semaphore's directory
)

// checkPath looks at the lock path before anything is done to it, and
// explains what is wrong with it: a missing directory, a symlink. It
// returns where the lock lives (resolve): format "" inspects an existing
// lock of either format.
func checkPath(path, format string) (target, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return target{}, &typeError{exitOSErr, err.Error()}
	}
	if st, err := os.Lstat(abs); (strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator))) && (err != nil || !st.IsDir()) {
		return target{}, &typeError{exitUsage, fmt.Sprintf("%s: a lock path ending in a separator must be an existing directory", path)}
	}
	dir := filepath.Dir(abs)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return target{}, &typeError{exitNoInput, fmt.Sprintf("cannot lock %s: directory %s does not exist", path, dir)}
	case errors.Is(err, fs.ErrPermission):
		return target{}, &typeError{exitNoPerm, fmt.Sprintf("cannot lock %s: %v", path, err)}
	case err != nil:
		return target{}, &typeError{errorCode(err), fmt.Sprintf("cannot lock %s: %v", path, err)}
	case !st.IsDir():
		return target{}, &typeError{exitNoInput, fmt.Sprintf("cannot lock %s: %s is not a directory", path, dir)}
	}
	return resolve(abs, format, format == "")
}

// detectFormat is the format of the lock at abs, for commands that inspect
// an existing lock: what is there, else the flag's.
func detectFormat(abs string, fileFlag bool) string {
	if st, err := os.Lstat(abs); err == nil {
		if st.Mode().IsRegular() {
			return formatFile
		}
		if st.IsDir() {
			return formatDir
		}
	}
	if fileFlag {
		return formatFile
	}
	return formatDir
}
