package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// --- lock and unlock ---

const keeperCommand = "--__keep"

func cmdLock(args []string, stderr *os.File) int {
	// The main form's options, so that the same abbreviations mean the
	// same; those about a command or a descriptor do not go with --lock.
	opts, rest, err := getopt(args, runSpecs, false)
	if err != nil {
		return failUsage(stderr, err)
	}
	f := lockFlags{conflict: exitConflict}
	pid := os.Getppid()
	var misplaced error
	for _, o := range opts {
		known, err := f.apply(o)
		switch {
		case err != nil:
			return failUsage(stderr, err)
		case known:
		case o.id == "pid":
			if pid, err = parsePID(o.name, o.val); err != nil {
				return failUsage(stderr, err)
			}
		default:
			misplaced = usagef("lock: %s does not go with --lock (it takes a lock path, no command)", o.name)
		}
	}
	if misplaced != nil && !f.help && !f.version {
		return failUsage(stderr, misplaced)
	}
	if f.help {
		io.WriteString(os.Stdout, usageText)
		return 0
	}
	if f.version {
		fmt.Println(version)
		return 0
	}
	if err := f.check(); err != nil {
		return failUsage(stderr, err)
	}
	switch {
	case len(rest) == 0:
		return failUsage(stderr, usagef("lock: no lock path given"))
	case len(rest) > 1:
		return failUsage(stderr, usagef("lock: one lock path expected, got %d arguments (lock takes no command)", len(rest)))
	}
	if err := checkLockArg(rest[0]); err != nil {
		return failUsage(stderr, err)
	}
	if p, err := (stale.SystemProcesses{}).Lookup(pid); err == nil && (!p.Exists || p.Zombie) {
		return failUsage(stderr, usagef("lock: --pid %d: no such process", pid))
	}
	// A lock for a process this user could not signal would be held for as
	// long as that process lives (bob: lock --pid 1), with nobody but its
	// owner or root able to end it.
	if err := lockcore.CanSignal(pid); err != nil {
		return fail(stderr, exitNoPerm, "lock: --pid %d: permission denied: the process is another user's (a lock is taken only for a process this user may signal)", pid)
	}
	t, err := checkPath(rest[0], f.format())
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	return holdFor(pid, t, &f, keeperWatch{}, os.Stdout, stderr)
}

// keeperWatch is what else than its holder's life ends a hold: the holder's
// descriptor fd closing or naming another file than path (the FD form).
type keeperWatch struct {
	fd   int
	path string // "": no descriptor to watch
}

// holdFor takes the lock t for process pid and leaves it to a keeper.
func holdFor(pid int, t target, f *lockFlags, w keeperWatch, stdout, stderr *os.File) int {
	lease := f.staleAfter
	if lease == 0 {
		lease = lockcore.DefaultStaleAfter
	}
	h, _, code := take(t, f, lease, stdout, stderr)
	if h == nil {
		return code
	}
	if pid == 0 { // no process keeps the descriptor open: flock's lock ends with dotlock
		return releaseCode(stderr, h.release(f.shared))
	}
	o, err := h.handOver(pid)
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if err := startKeeper(h, o, pid, lease, f.shared, w); err != nil {
		h.releaseFor(o)
		return fail(stderr, exitOSErr, "lock %s: cannot start the heartbeat keeper: %v (the lock was released)", t.abs, err)
	}
	return 0
}

func releaseCode(stderr *os.File, err error) int {
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	return 0
}

// startKeeper starts the detached process that heartbeats a handed-over
// hold while its holder lives, for judges that cannot probe that process
// (other hosts, other PID namespaces), and releases it when the holder
// exits. It returns once the keeper has adopted the hold.
func startKeeper(h *handle, o stale.Owner, pid int, lease time.Duration, shared bool, w keeperWatch) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{keeperCommand, "--uuid", o.UUID, "--pid", strconv.Itoa(pid), "--stale-after", lease.String()}
	if h.format == formatFile {
		args = append(args, "--file")
	}
	if shared {
		args = append(args, "--shared")
	}
	if w.path != "" {
		args = append(args, "--fd", strconv.Itoa(w.fd), "--fd-path", w.path)
	}
	cmd := exec.Command(exe, append(args, "--", h.path)...)
	cmd.Dir = keeperDir
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd.Stdin, cmd.Stderr = null, null
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if w.path != "" {
		// The keeper's own reference to the open file description, to
		// compare the holder's descriptor with (sameFile).
		cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(w.fd), w.path)}
	}
	cmd.SysProcAttr = keeperAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "ok" {
			cmd.Process.Release()
			return nil
		}
		cmd.Wait()
		if s == "" {
			s = "it exited"
		}
		return errors.New(s)
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return errors.New("it did not start in 10s")
	}
}

// cmdKeeper is the keeper: it adopts the hold, says "ok", heartbeats it
// until the hold is lost (released by unlock, or broken), and releases it
// when its holder exits.
func cmdKeeper(args []string) int {
	opts, rest, err := getopt(args, []optSpec{
		{id: "uuid", long: []string{"uuid"}, arg: true},
		{id: "pid", long: []string{"pid"}, arg: true},
		{id: "stale-after", long: []string{"stale-after"}, arg: true},
		{id: "file", long: []string{"file"}},
		{id: "shared", long: []string{"shared"}},
		{id: "fd", long: []string{"fd"}, arg: true},
		{id: "fd-path", long: []string{"fd-path"}, arg: true},
	}, false)
	say := func(format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return 1
	}
	if err != nil || len(rest) != 1 {
		return say("keeper: bad arguments %q", args)
	}
	var uuid string
	var pid int
	var shared bool
	var w keeperWatch
	format, lease := formatDir, lockcore.DefaultStaleAfter
	for _, o := range opts {
		switch o.id {
		case "uuid":
			uuid = o.val
		case "pid":
			pid, err = parsePID(o.name, o.val)
		case "stale-after":
			lease, err = parseLease(o.name, o.val)
		case "file":
			format = formatFile
		case "shared":
			shared = true
		case "fd":
			w.fd, err = parseFD(o.name, o.val)
		case "fd-path":
			w.path = o.val
		}
		if err != nil {
			return say("keeper: %v", err)
		}
	}
	signal.Ignore(keeperIgnored...) // SIGTERM still ends it: the lock stays the holder's
	// The keeper beats itself, each time right after it saw its hold still
	// at the lock (keep).
	h, err := openHandle(rest[0], format, append(lockOptions(lease, nil), lockcore.WithManualHeartbeat()))
	if err != nil {
		return say("keeper: %v", err)
	}
	o, err := h.adopt(uuid, shared)
	if err != nil {
		return say("keeper: %v", err)
	}
	if o.PID != pid {
		h.release(shared)
		return say("keeper: the hold names pid %d, not %d", o.PID, pid)
	}
	checker, err := stale.NewChecker()
	if err != nil {
		return say("keeper: %v", err)
	}
	fmt.Println("ok")
	keep(h, o, shared, lease, w, checker)
	return 0
}

// keeperFD is the keeper's descriptor of its holder's open file (the
// first of ExtraFiles).
const keeperFD = 3

// fdPoll is how often a keeper looks at its holder's descriptor: a local
// look (/proc), and a release as prompt as flock's should not wait long.
const fdPoll = 20 * time.Millisecond

// keep heartbeats the hold o until it is lost, its holder dies, or the
// holder's descriptor w closes. It beats only right after a look that
// found the hold still at the lock: a beat that found it released by
// dotlock -u would decide so under the guard (H1g), making the guard's
// file in a directory the script may be removing.
func keep(h *handle, o stale.Owner, shared bool, lease time.Duration, w keeperWatch, checker *stale.Checker) {
	beatEvery := lease / 4 // lockcore's default heartbeat
	t := time.NewTicker(min(time.Second, max(beatEvery, 10*time.Millisecond)))
	defer t.Stop()
	lastBeat := time.Now()
	var fdTick <-chan time.Time
	if w.path != "" {
		ft := time.NewTicker(fdPoll)
		defer ft.Stop()
		fdTick = ft.C
	}
	// Whatever ends the keeping, no heartbeat may be under way at exit: it
	// could be one deciding under the guard, whose guard exit would leave.
	defer h.drop()
	lost, exited := h.lost(), exitNotice(o.PID)
	for {
		select {
		case <-lost:
			return
		case <-exited:
			exited = nil // judged below: the notice may be of another process with the PID since
		case <-fdTick:
			if sameFile(o.PID, w.fd, keeperFD, w.path) {
				continue
			}
		case now := <-t.C:
			if checker.Judge(o).Verdict != stale.Dead {
				// Released by unlock (or broken)?
				if released(h, o) {
					return
				}
				if now.Sub(lastBeat) >= beatEvery-beatEvery/8 {
					h.beat()
					lastBeat = now
				}
				continue
			}
		}
		// The holder closed its descriptor or died: release, unless that
		// was done for it (dotlock -u) — a release of a hold already gone
		// would decide so under the guard, making files after the holder
		// thought the lock done with.
		if !released(h, o) {
			h.release(shared) // checked: a breaker may have been quicker
		}
		return
	}
}

// released reports whether the hold o is no longer at its lock.
func released(h *handle, o stale.Owner) bool {
	st, err := h.status()
	return err == nil && !holdsUUID(st, o.UUID)
}

func holdsUUID(st lockcore.Status, uuid string) bool {
	for _, hd := range st.Holders {
		if hd.Owner.UUID == uuid {
			return true
		}
	}
	return false
}

// unlockPath is -u LOCKPATH: it releases what --lock took (for pid, or
// else for a process it runs under).
func unlockPath(path string, pid int, file, verbose bool, stderr *os.File) int {
	h, st, err := existingStatus(path, file, nil)
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if !st.Held {
		return fail(stderr, exitTempFail, "unlock %s: not locked (released already, or reclaimed after its holder exited)", st.Path)
	}
	// Whose hold may this release? With --pid, that process's (on this
	// host); without, one taken for a process this unlock runs under (its
	// parent shell, or a shell further up).
	var mine func(int) bool
	who := ""
	if pid != 0 {
		mine = func(p int) bool { return p == pid }
		who = fmt.Sprintf("pid %d", pid)
	} else {
		anc := ancestors()
		mine = func(p int) bool { return anc[p] }
		who = fmt.Sprintf("this process's parents (pid %d and up)", os.Getppid())
	}
	var pick *stale.Owner
	for _, hd := range st.Holders {
		o := hd.Owner
		if hd.Judgement.Verdict == stale.Remote || !mine(o.PID) {
			continue
		}
		if pid == 0 && hd.Judgement.Verdict != stale.Alive {
			continue
		}
		if pick == nil || o.Acquired.After(pick.Acquired) {
			pick = &o
		}
	}
	if pick == nil {
		now := time.Now()
		var held []string
		for _, hd := range st.Holders {
			held = append(held, describeHolder(hd, now))
		}
		if st.RecordErr != nil {
			held = append(held, "an unreadable record: "+st.RecordErr.Error())
		}
		return fail(stderr, exitTempFail, "unlock %s: not held for %s; held by %s (use --pid PID)", st.Path, who, strings.Join(held, "; "))
	}
	if err := h.releaseFor(*pick); err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if verbose {
		printLine(stderr, "dotlock: released %s (pid %d, token %d)", st.Path, pick.PID, pick.Token)
	}
	return 0
}

// ancestors are this process, its parent, its parent's parent, and so on.
// This process counts too: a shell that execs its last command (bash -c
// 'dotlock lock x; ...; dotlock unlock x') runs unlock as the very process
// the lock was taken for.
func ancestors() map[int]bool {
	m := map[int]bool{os.Getpid(): true}
	pid := os.Getppid()
	for i := 0; pid > 1 && i < 128 && !m[pid]; i++ {
		m[pid] = true
		var ok bool
		if pid, ok = parentOf(pid); !ok {
			break
		}
	}
	return m
}
