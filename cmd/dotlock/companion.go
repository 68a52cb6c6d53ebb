package main

// Existing files and directories as lock paths (flock /tmp -c cmd, flock -n
// "$0", 9>file): dotlock never changes them; their lock is the companion
// path beside them, NAME.dotlock (docs/COMPANION.md).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// companionSuffix names the lock of an existing file or directory P: the
// lock at P.dotlock, in P's directory. It is derived from P's name alone,
// so every process on every host that names P (by any mount) finds it.
const companionSuffix = ".dotlock"

// target is where the lock for a lock path argument lives.
type target struct {
	abs    string // the lock: the path itself, or its companion
	format string // the lock's format there
	object string // the user's file or directory it stands for, or ""
}

// kind is what stands at a lock path.
type kind int

const (
	kindFree   kind = iota // nothing (any more): the path is free
	kindLock               // a dotlock lock of the format
	kindObject             // the user's file or directory: lock beside it
)

// classify tells what st, found at abs, is for a lock of format ("" to
// inspect an existing lock of either format).
func classify(abs string, st fs.FileInfo, format string) (kind, error) {
	switch {
	case st.Mode().IsRegular():
		return classifyFile(abs, st, format)
	case st.IsDir():
		return classifyDir(abs, st, format)
	}
	return 0, &typeError{exitDataErr, fmt.Sprintf("%s is a %s, not a lock", abs, st.Mode().Type())}
}

func classifyFile(abs string, st fs.FileInfo, format string) (kind, error) {
	// Read as the engine reads a record: at most a record's size, never
	// through a symlink or blocking on a FIFO put there since.
	data, err := lockcore.NewFileStore(abs).Read()
	isRecord := err == nil && len(data) > 0 && stale.LooksLikeRecord(data)
	switch {
	case format == formatDir && isRecord:
		return 0, &typeError{exitDataErr, fmt.Sprintf("%s is a lock file (dotlock --file): use --file for it", abs)}
	case format != formatFile && !isRecord:
		return kindObject, nil // a lock directory is never a file; inspecting, as the default format
	case isRecord:
		return kindLock, nil
	case err != nil && !errors.Is(err, lockcore.ErrNotLock):
		return kindLock, nil // unreadable (another user's lock file): the engine judges it
	case len(data) > 0:
		return kindObject, nil
	}
	// Empty: the user's (this command creates P so, as flock does). A Go
	// program's lock at P itself is empty for a moment while it is made;
	// the command locks P.dotlock then, as it would for the user's file:
	// a program shares the command's lock by locking P.dotlock
	// (docs/COMPANION.md). Waiting to see, as this did, cost every run on
	// such a path the grace period, and judged its age by this host's
	// clock.
	return kindObject, nil
}

func classifyDir(abs string, st fs.FileInfo, format string) (kind, error) {
	ents, err := os.ReadDir(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESTALE) {
			return kindFree, nil // a lock directory released since the lstat (NFS: ESTALE)
		}
		if errors.Is(err, fs.ErrPermission) {
			return kindObject, nil // dotlock makes its directories searchable by its users
		}
		return 0, err
	}
	if len(ents) == 0 {
		return kindObject, nil // empty: the user's (see classifyFile)
	}
	for _, e := range ents {
		if !lockcore.ProtocolName(e.Name()) {
			return kindObject, nil
		}
	}
	if format == formatFile {
		return 0, &typeError{exitDataErr, fmt.Sprintf("%s is a lock directory, not a lock file: drop --file", abs)}
	}
	return kindLock, nil
}

// resolve finds the lock for the lock path abs (absolute, checked): the
// path itself if it is a dotlock lock of the format (made by the library,
// or an older dotlock), else the companion of the file or directory there,
// which is created, as flock does, if the path is free (unless inspect). A
// path named *.dotlock is a lock path itself. An empty file or directory
// is the user's.
func resolve(abs, format string, inspect bool) (target, error) {
	if strings.HasSuffix(abs, companionSuffix) {
		// A lock by its name: a companion named directly (the lock a Go
		// program shares with this command's users of P is P.dotlock).
		if st, err := os.Lstat(abs); err == nil && st.Mode()&fs.ModeSymlink == 0 {
			if _, err := classify(abs, st, format); err != nil {
				return target{}, err // the other format's lock
			}
		}
		if format == "" {
			format = detectFormat(abs, false)
		}
		return target{abs: abs, format: format}, nil
	}
	for gone := 0; ; {
		st, err := os.Lstat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist) && inspect:
			return companionTarget(abs, format)
		case errors.Is(err, fs.ErrNotExist):
			if err := createObject(abs); err != nil {
				return target{}, err
			}
			continue
		case err != nil:
			return target{abs: abs, format: format}, nil // the engine says what is wrong
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return target{}, &typeError{exitDataErr, fmt.Sprintf("%s is a symlink; dotlock never follows one at a lock path", abs)}
		}
		k, err := classify(abs, st, format)
		if err != nil {
			return target{}, err
		}
		switch k {
		case kindFree:
			// Gone since the lstat: look again. A few times only: a
			// client's cache may go on answering the lstat for a while
			// (sshfs: 20 s by default); then the engine decides.
			if gone++; gone < 3 {
				continue
			}
			fallthrough
		case kindLock:
			if format == "" {
				format = detectFormat(abs, false)
			}
			return target{abs: abs, format: format}, nil
		}
		return companionTarget(abs, format)
	}
}

// createObject creates the file abs, empty, as flock does: from then on it
// is the user's file, locked at its companion like any other, and a shell's
// 9>abs opens it. Never through a symlink, nor blocking on a FIFO put
// there since; someone else's file created meanwhile is theirs.
func createObject(abs string) error {
	f, err := os.OpenFile(abs, os.O_RDONLY|os.O_CREATE|oNoFollow, 0o666)
	if err != nil {
		return &typeError{errorCode(err), fmt.Sprintf("cannot create %s: %v", abs, unwrapExec(err))}
	}
	return f.Close()
}

// companionTarget is the lock beside the user's file or directory abs.
func companionTarget(abs, format string) (target, error) {
	if filepath.Dir(abs) == abs {
		return target{}, &typeError{exitUsage, fmt.Sprintf("cannot lock %s: it has no directory to hold its companion lock", abs)}
	}
	c := abs + companionSuffix
	if format == "" {
		format = detectFormat(c, false)
	}
	return target{abs: c, format: format, object: abs}, nil
}
