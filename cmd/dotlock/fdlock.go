package main

// The descriptor forms: dotlock [options] FD and dotlock -u FD, as flock's,
// for the shell idioms ( dotlock -n 9 || exit 1; ... ) 9>FILE and
// exec 9>FILE; dotlock 9; ...; dotlock -u 9. The lock is FILE's companion
// (companion.go), held by a keeper for the process that has FD open (the
// calling shell) until it closes FD or exits.

import (
	"os"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// lockFD is dotlock [options] FD.
func lockFD(fd int, f *lockFlags, stdout, stderr *os.File) int {
	t, path, err := fdTarget(fd, f.format())
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	pid := holderOf(fd, path)
	began := time.Now()
	o, held, err := heldByFile(t, fd, path)
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	switch {
	case held && (o.Mode == stale.ModeShared) == f.shared:
		if f.verbose { // locked already: as flock(2) on a locked descriptor
			tookLock(stdout, began)
		}
		return 0
	case held && o.PID == pid: // converting, as flock(2): release, then lock
		if code := releaseHold(t, o, stderr); code != 0 {
			return code
		}
	}
	return holdFor(pid, t, f, keeperWatch{fd: fd, path: path}, stdout, stderr)
}

// unlockFD is dotlock -u FD: it releases the hold taken with FD for the
// process that has it open. None is no error, as flock's.
func unlockFD(fd int, verbose bool, stderr *os.File) int {
	t, path, err := fdTarget(fd, "")
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	o, held, err := heldByFile(t, fd, path)
	if err != nil || !held {
		return releaseCode(stderr, err)
	}
	if code := releaseHold(t, o, stderr); code != 0 {
		return code
	}
	if verbose {
		printLine(stderr, "dotlock: released %s (pid %d, token %d)", t.abs, o.PID, o.Token)
	}
	return 0
}

// heldByFile finds the hold on t that belongs to this process's open file
// description fd (as a flock lock does): one whose holder, on this host,
// has it open as fd too, such as the shell that locked it or the dotlock
// --fd running this command.
func heldByFile(t target, fd int, path string) (stale.Owner, bool, error) {
	h, err := openHandle(t.abs, detectFormat(t.abs, t.format == formatFile), nil)
	if err != nil {
		return stale.Owner{}, false, err
	}
	st, err := h.status()
	if err != nil {
		return stale.Owner{}, false, err
	}
	for _, hd := range st.Holders {
		if hd.Judgement.Verdict == stale.Alive && sameFile(hd.Owner.PID, fd, fd, path) {
			return hd.Owner, true, nil
		}
	}
	return stale.Owner{}, false, nil
}

func releaseHold(t target, o stale.Owner, stderr *os.File) int {
	h, err := openHandle(t.abs, detectFormat(t.abs, t.format == formatFile), nil)
	if err == nil {
		err = h.releaseFor(o)
	}
	return releaseCode(stderr, err)
}
