package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	dl "github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// parseAdmin parses a subcommand's options (which may come before or after
// the lock path) and returns its one lock path.
func parseAdmin(name string, args []string, specs []optSpec) ([]opt, string, error) {
	specs = append(specs, optSpec{id: "help", short: "h", long: []string{"help"}})
	opts, rest, err := getopt(args, specs, false)
	if err != nil {
		return nil, "", err
	}
	for _, o := range opts {
		if o.id == "help" {
			return opts, "", nil
		}
	}
	switch len(rest) {
	case 0:
		return nil, "", usagef("%s: no lock path given", name)
	case 1:
	default:
		return nil, "", usagef("%s: one lock path expected, got %d arguments", name, len(rest))
	}
	if err := checkLockArg(rest[0]); err != nil {
		return nil, "", err
	}
	return opts, rest[0], nil
}

func wantsHelp(opts []opt) bool {
	for _, o := range opts {
		if o.id == "help" {
			return true
		}
	}
	return false
}

// openExisting opens the lock at path for inspection, in the format of what
// is there (else the flag's).
func openExisting(path string, fileFlag bool, opts []dl.Option) (*handle, error) {
	abs, err := checkPath(path, "")
	if err != nil {
		return nil, err
	}
	return openHandle(abs, detectFormat(abs, fileFlag), opts)
}

// --- status ---

// jsonStatus is status --json's output. The field names are stable; the
// README documents them.
type jsonStatus struct {
	Path        string       `json:"path"`
	Format      string       `json:"format"`
	Held        bool         `json:"held"`
	Mode        string       `json:"mode"`
	Holders     []jsonHolder `json:"holders"`
	RecordError string       `json:"record_error"`
	LastToken   uint64       `json:"last_token"`
	Waiting     int          `json:"waiting"`
	Breaking    bool         `json:"breaking"`
	BreakingBy  string       `json:"breaking_by"`
}

type jsonHolder struct {
	PID           int     `json:"pid"`
	Host          string  `json:"host"`
	Since         string  `json:"since"`
	Token         uint64  `json:"token"`
	UUID          string  `json:"uuid"`
	Mode          string  `json:"mode"`
	Heartbeat     uint64  `json:"heartbeat"`
	HeartbeatTime string  `json:"heartbeat_time"`
	HeartbeatAge  float64 `json:"heartbeat_age"`
	Verdict       string  `json:"verdict"`
	Reason        string  `json:"reason"`
	Started       string  `json:"started"`
	StartID       string  `json:"start_id"`
	BootID        string  `json:"boot_id"`
	PIDNamespace  string  `json:"pid_namespace"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func toJSON(h *handle, st lockcore.Status, now time.Time) jsonStatus {
	js := jsonStatus{Path: st.Path, Held: st.Held, Mode: st.Mode, Holders: []jsonHolder{},
		LastToken: st.LastToken, Waiting: st.Waiting, Breaking: st.Breaking, BreakingBy: st.GuardBy}
	if st.Held {
		js.Format = h.format
	}
	if st.RecordErr != nil {
		js.RecordError = st.RecordErr.Error()
	}
	for _, hd := range st.Holders {
		o := hd.Owner
		js.Holders = append(js.Holders, jsonHolder{
			PID: o.PID, Host: o.Host, Since: rfc3339(o.Acquired), Token: o.Token, UUID: o.UUID, Mode: o.Mode,
			Heartbeat: o.Beat, HeartbeatTime: rfc3339(o.BeatTime),
			HeartbeatAge: float64(now.Sub(o.BeatTime).Milliseconds()) / 1000,
			Verdict:      hd.Judgement.Verdict.String(), Reason: hd.Judgement.Reason,
			Started: rfc3339(o.Started), StartID: o.StartID, BootID: o.BootID, PIDNamespace: o.PIDNS,
		})
	}
	return js
}

// describeHolder is one holder, for people.
func describeHolder(hd lockcore.Holder, now time.Time) string {
	o := hd.Owner
	s := fmt.Sprintf("pid %d on %s", o.PID, o.Host)
	if !o.Acquired.IsZero() {
		s += fmt.Sprintf(" since %s (%s)", clock(o.Acquired, now), ago(now.Sub(o.Acquired)))
	}
	s += fmt.Sprintf(", token %d, heartbeat %d (%s); %s: %s", o.Token, o.Beat, ago(now.Sub(o.BeatTime)), hd.Judgement.Verdict, hd.Judgement.Reason)
	return s
}

func cmdStatus(args []string, stdout, stderr *os.File) int {
	opts, path, err := parseAdmin("status", args, []optSpec{
		{id: "json", long: []string{"json"}},
		{id: "file", long: []string{"file"}},
	})
	if err != nil {
		return failUsage(stderr, err)
	}
	if wantsHelp(opts) {
		io.WriteString(stdout, usageText)
		return 0
	}
	var asJSON, file bool
	for _, o := range opts {
		asJSON = asJSON || o.id == "json"
		file = file || o.id == "file"
	}
	h, err := openExisting(path, file, nil)
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	st, err := h.status()
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	now := time.Now()
	if asJSON {
		b, _ := json.Marshal(toJSON(h, st, now))
		stdout.Write(append(escapeJSON(b), '\n'))
	} else {
		printStatus(stdout, h, st, now)
	}
	if !st.Held {
		return 1
	}
	return 0
}

func printStatus(w io.Writer, h *handle, st lockcore.Status, now time.Time) {
	switch {
	case !st.Held:
		printLine(w, "%s: free (last token %d)", st.Path, st.LastToken)
	case st.RecordErr != nil:
		printLine(w, "%s: held, but its record cannot be read: %v", st.Path, st.RecordErr)
	case st.Mode == stale.ModeShared:
		printLine(w, "%s: held shared by %d reader(s)", st.Path, len(st.Holders))
		for _, hd := range st.Holders {
			printLine(w, "  %s", describeHolder(hd, now))
		}
	case len(st.Holders) == 1:
		printLine(w, "%s: held by %s", st.Path, describeHolder(st.Holders[0], now))
	}
	if st.Waiting > 0 {
		printLine(w, "  %d waiting", st.Waiting)
	}
	printGuard(w, st)
}

// --- break ---

func cmdBreak(args []string, stdout, stderr *os.File) int {
	opts, path, err := parseAdmin("break", args, []optSpec{
		{id: "force", short: "f", long: []string{"force"}},
		{id: "file", long: []string{"file"}},
		{id: "verbose", short: "v", long: []string{"verbose"}},
		{id: "stale-after", long: []string{"stale-after"}, arg: true},
	})
	if err != nil {
		return failUsage(stderr, err)
	}
	if wantsHelp(opts) {
		io.WriteString(stdout, usageText)
		return 0
	}
	var force, file, verbose bool
	lease := lockcore.DefaultStaleAfter
	for _, o := range opts {
		switch o.id {
		case "force":
			force = true
		case "file":
			file = true
		case "verbose":
			verbose = true
		case "stale-after":
			if lease, err = parseLease(o.name, o.val); err != nil {
				return failUsage(stderr, err)
			}
		}
	}
	h, err := openExisting(path, file, lockOptions(lease, nil))
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	st, err := h.status()
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	now := time.Now()
	if !st.Held {
		printLine(stderr, "dotlock: %s is not locked", st.Path)
		return 0
	}
	for _, hd := range st.Holders {
		switch {
		case force && hd.Judgement.Verdict != stale.Dead:
			printLine(stderr, "dotlock: breaking %s by force: held by %s", st.Path, describeHolder(hd, now))
		case !force && hd.Judgement.Verdict == stale.Remote && st.Mode != stale.ModeShared:
			printLine(stderr, "dotlock: %s is held by %s; watching its heartbeat for up to %v", st.Path, describeHolder(hd, now), lease)
		case verbose:
			printLine(stderr, "dotlock: %s is held by %s", st.Path, describeHolder(hd, now))
		}
	}
	switch {
	case force && st.RecordErr != nil:
		printLine(stderr, "dotlock: breaking %s by force: its record cannot be read (%v)", st.Path, st.RecordErr)
	case st.RecordErr != nil:
		printLine(stderr, "dotlock: %s: its record cannot be read (%v); watching it for up to %v in case it is being written", st.Path, st.RecordErr, min(lockcore.DefaultGrace, lease))
	}
	ctx, cancel := context.WithTimeout(context.Background(), lease+lockcore.DefaultGrace+5*time.Second)
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, forwardSignals...)
	go func() {
		<-sigc
		cancel()
	}()
	res, err := h.breakLock(ctx, force)
	for _, o := range res.Owners {
		printLine(stderr, "dotlock: removed the lock %s of pid %d on %s (token %d): %s", st.Path, o.PID, o.Host, o.Token, res.Reason)
	}
	if res.Unreadable {
		printLine(stderr, "dotlock: removed the lock %s with an unreadable record: %s", st.Path, res.Reason)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, dl.ErrLocked):
		var le *dl.LockedError
		errors.As(err, &le)
		return fail(stderr, exitConflict, "not broken: %s: %s (--force removes it anyway)", st.Path, le.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fail(stderr, exitConflict, "not broken: %s: its holder was still being watched", st.Path)
	}
	return fail(stderr, errorCode(err), "%v", err)
}

// --- lock and unlock ---

const keeperCommand = "__keep"

func cmdLock(args []string, stderr *os.File) int {
	specs := append(append([]optSpec{}, lockSpecs...), optSpec{id: "pid", long: []string{"pid"}, arg: true})
	opts, rest, err := getopt(args, specs, false)
	if err != nil {
		return failUsage(stderr, err)
	}
	f := lockFlags{conflict: exitConflict}
	pid := os.Getppid()
	for _, o := range opts {
		known, err := f.apply(o)
		if err != nil {
			return failUsage(stderr, err)
		}
		if !known && o.id == "pid" {
			if pid, err = parsePID(o.name, o.val); err != nil {
				return failUsage(stderr, err)
			}
		}
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
	abs, err := checkPath(rest[0], f.format())
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	lease := f.staleAfter
	if lease == 0 {
		lease = lockcore.DefaultStaleAfter
	}
	prog := newProgress(stderr, abs, f.verbose)
	f.exactMode()
	h, err := openHandle(abs, f.format(), f.options(lease, prog))
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, forwardSignals...)
	sig, err := acquireOrSignal(h, f.shared, f.nonblock, f.timeout, sigc, prog)
	if sig != nil {
		return 128 + signalNumber(sig)
	}
	if err != nil {
		return lockFailed(stderr, prog, &f, abs, err)
	}
	o, err := h.handOver(pid)
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if err := startKeeper(h, o, pid, lease, f.shared); err != nil {
		h.releaseFor(o)
		return fail(stderr, exitOSErr, "lock %s: cannot start the heartbeat keeper: %v (the lock was released)", abs, err)
	}
	if f.verbose {
		prog.say("locked %s for pid %d (token %d)", abs, pid, o.Token)
	}
	return 0
}

// startKeeper starts the detached process that heartbeats a handed-over
// hold while its holder lives, for judges that cannot probe that process
// (other hosts, other PID namespaces), and releases it when the holder
// exits. It returns once the keeper has adopted the hold.
func startKeeper(h *handle, o stale.Owner, pid int, lease time.Duration, shared bool) error {
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
		}
		if err != nil {
			return say("keeper: %v", err)
		}
	}
	signal.Ignore(keeperIgnored...) // SIGTERM still ends it: the lock stays the holder's
	h, err := openHandle(rest[0], format, lockOptions(lease, nil))
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
	t := time.NewTicker(min(time.Second, max(lease/4, 10*time.Millisecond)))
	defer t.Stop()
	lost := h.lost()
	for {
		select {
		case <-lost:
			return 0
		case <-t.C:
		}
		if checker.Judge(o).Verdict == stale.Dead {
			h.release(shared) // checked: a breaker may have been quicker
			return 0
		}
		// Released by unlock (or broken)? The heartbeat finds out too, but
		// only at its next beat (the lease/4).
		if st, err := h.status(); err == nil && !holdsUUID(st, o.UUID) {
			return 0
		}
	}
}

func holdsUUID(st lockcore.Status, uuid string) bool {
	for _, hd := range st.Holders {
		if hd.Owner.UUID == uuid {
			return true
		}
	}
	return false
}

func cmdUnlock(args []string, stderr *os.File) int {
	opts, path, err := parseAdmin("unlock", args, []optSpec{
		{id: "pid", long: []string{"pid"}, arg: true},
		{id: "file", long: []string{"file"}},
		{id: "verbose", short: "v", long: []string{"verbose"}},
	})
	if err != nil {
		return failUsage(stderr, err)
	}
	if wantsHelp(opts) {
		io.WriteString(os.Stdout, usageText)
		return 0
	}
	var file, verbose bool
	pid := 0
	for _, o := range opts {
		switch o.id {
		case "pid":
			if pid, err = parsePID(o.name, o.val); err != nil {
				return failUsage(stderr, err)
			}
		case "file":
			file = true
		case "verbose":
			verbose = true
		}
	}
	h, err := openExisting(path, file, nil)
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	st, err := h.status()
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
		p, err := process.NewProcess(int32(pid))
		if err != nil {
			break
		}
		pp, err := p.Ppid()
		if err != nil {
			break
		}
		pid = int(pp)
	}
	return m
}
