package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

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
	t, err := checkPath(path, "")
	if err != nil {
		return nil, err
	}
	return openHandle(t.abs, detectFormat(t.abs, fileFlag), opts)
}

// existingStatus opens the lock at path as openExisting does and reads
// its status: what --status, --break and -u LOCKPATH start from.
func existingStatus(path string, fileFlag bool, opts []dl.Option) (*handle, lockcore.Status, error) {
	h, err := openExisting(path, fileFlag, opts)
	if err != nil {
		return nil, lockcore.Status{}, err
	}
	st, err := h.status()
	return h, st, err
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
	if code, ok := semaphoreStatus(path, asJSON, stdout, stderr); ok {
		return code
	}
	h, st, err := existingStatus(path, file, nil)
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
	h, st, err := existingStatus(path, file, lockOptions(lease, nil))
	if err != nil {
		return fail(stderr, errorCode(err), "%v", err)
	}
	if !st.Held {
		printLine(stderr, "dotlock: %s is not locked", st.Path)
		return 0
	}
	announceBreak(stderr, st, force, verbose, lease)
	ctx, cancel := context.WithTimeout(context.Background(), lease+lockcore.DefaultGrace+5*time.Second)
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, forwardSignals...)
	go func() {
		<-sigc
		cancel()
	}()
	res, err := h.breakLock(ctx, force)
	return reportBreak(stderr, st.Path, res, err)
}

// announceBreak says, before a break, whose lock it is and what will be
// waited for.
func announceBreak(stderr io.Writer, st lockcore.Status, force, verbose bool, lease time.Duration) {
	now := time.Now()
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
}

// reportBreak says what a break removed, and returns the exit status.
func reportBreak(stderr io.Writer, path string, res lockcore.Broken, err error) int {
	for _, o := range res.Owners {
		printLine(stderr, "dotlock: removed the lock %s of pid %d on %s (token %d): %s", path, o.PID, o.Host, o.Token, res.Reason)
	}
	if res.Unreadable {
		printLine(stderr, "dotlock: removed the lock %s with an unreadable record: %s", path, res.Reason)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, dl.ErrLocked):
		var le *dl.LockedError
		errors.As(err, &le)
		return fail(stderr, exitConflict, "not broken: %s: %s (--force removes it anyway)", path, le.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fail(stderr, exitConflict, "not broken: %s: its holder was still being watched", path)
	}
	return fail(stderr, errorCode(err), "%v", err)
}
