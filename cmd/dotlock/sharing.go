package main

// Sharing a lock between users: --mode, and what status says about a
// breaker guard of another user's.

import (
	"io"
	"io/fs"
	"strconv"
	"time"

	dl "github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
)

// parseMode reads --mode: octal permission bits (0660, 660), at most 0777.
func parseMode(name, v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n == 0 || n > 0o777 {
		return 0, usagef("invalid mode '%s' for %s (octal permission bits, such as 0660)", v, name)
	}
	return uint32(n), nil
}

// options are the handle's options from the command line. An explicit
// --mode is exact: dotlock then creates its files with umask 0 (exactMode),
// while the command it runs keeps the caller's umask (commandUmask).
func (f *lockFlags) options(lease time.Duration, prog *progress) []dl.Option {
	opts := lockOptions(lease, prog)
	if f.mode != 0 {
		opts = append(opts, dl.WithPerm(fs.FileMode(f.mode)))
	}
	return opts
}

// exactMode makes modes given with --mode exact, not filtered by the umask.
func (f *lockFlags) exactMode() {
	if f.mode != 0 {
		callerUmask = setUmask(0)
	}
}

// callerUmask is the umask dotlock was started with, once exactMode changed
// it (-1: unchanged).
var callerUmask = -1

// commandUmask runs start (which starts the command) with the caller's
// umask. dotlock creates no file meanwhile: while the command runs it only
// rewrites its heartbeat in place.
func commandUmask(start func() error) error {
	if callerUmask < 0 {
		return start()
	}
	setUmask(callerUmask)
	defer setUmask(0)
	return start()
}

// printGuard says that a breaker guard exists, and whose it is: while it
// stands no one takes the lock, and one left by another user in a sticky
// directory only that user or root can remove.
func printGuard(w io.Writer, st lockcore.Status) {
	if !st.Breaking {
		return
	}
	by := ""
	if st.GuardBy != "" {
		by = ", owned by " + st.GuardBy
	}
	printLine(w, "  a stale lock is being removed (%s.break exists%s); a guard left there for longer than the grace period blocks the lock until its owner or root removes it", st.Path, by)
}
