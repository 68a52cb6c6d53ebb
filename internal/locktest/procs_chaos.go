package locktest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// Helper roles used by the two-host suite (RunTwoHosts). They are plain
// helper roles: any test may use them.
const (
	// RoleWatch is RoleContend that also prints "waiting REASON" each time
	// its Lock is told who is in the way and that changes (WithOnWait): the
	// proof that it judged the holder and is waiting, and why.
	RoleWatch = "watch"
	// RoleChaos is a worker for chaos tests. After "start" it loops until
	// stdin closes, taking the lock each time and, while holding it:
	//
	//	appending "begin TOKEN HOST PID T0 V" to Log (T0: UnixNano just
	//	  after Lock returned; V: the counter value it read),
	//	writing V+1 to Counter atomically (a temporary file renamed over
	//	  it, so that a kill at any instant leaves the old or the new value,
	//	  never a torn one), and
	//	appending "end TOKEN HOST PID T0 T1 V+1" (T1: UnixNano just before
	//	  Unlock),
	//
	// then unlocking. Each stale lock it breaks is logged, from its OnBreak
	// callback, as "break VTOKEN VHOST VPID HOST PID T REASON" (VTOKEN 0,
	// VHOST "-" and VPID 0 for a record that could not be parsed). The
	// counter is a fixed-width decimal number, so that its size never
	// changes (a client with stale cached attributes still reads all of
	// it). On stdin EOF it finishes the hold it is in, prints "done N" (N:
	// holds completed) and exits. A hold found lost, or any error, is
	// logged ("lost ..." or "error ...") and ends the worker with "error
	// MESSAGE".
	RoleChaos = "chaos"
)

// procMoreRoles are the roles procRunRole finds outside its own switch.
var procMoreRoles = map[string]procRoleFunc{
	RoleWatch: procWatch,
	RoleChaos: procChaos,
}

func procOneLine(s string) string { return strings.ReplaceAll(s, "\n", " | ") }

func procWatch(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	self, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		return fail("stale.Self: %v", err)
	}
	opts = append(opts, lockcore.WithOnWait(func(e *lockcore.LockedError) {
		o.printf("waiting %s", procOneLine(e.Error()))
	}))
	l, err := k.New(s.Path, opts...)
	if err != nil {
		return fail("New: %v", err)
	}
	o.printf("ready %d %s", os.Getpid(), self.StartID)
	if !procWaitStart(in) {
		return 0
	}
	s.Role = RoleContend // procHold then says "won"
	return procHold(l, s, o, in, fail)
}

// procChaosCounterWidth is the width of the counter file's number.
const procChaosCounterWidth = 20

func procChaos(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	if s.Counter == "" || s.Log == "" {
		return fail("chaos role needs Counter and Log")
	}
	self, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		return fail("stale.Self: %v", err)
	}
	host, pid := self.Host, os.Getpid()
	opts = append(opts, lockcore.WithOnBreak(func(v *stale.Owner, reason string) {
		vtok, vhost, vpid := uint64(0), "-", 0
		if v != nil {
			vtok, vhost, vpid = v.Token, v.Host, v.PID
		}
		// Best effort: a failure shows up as a break missing from the log,
		// which the test reports.
		procAppendLine(s.Log, fmt.Sprintf("break %d %s %d %s %d %d %s",
			vtok, vhost, vpid, host, pid, time.Now().UnixNano(), procOneLine(reason)))
	}))
	l, err := k.New(s.Path, opts...)
	if err != nil {
		return fail("New: %v", err)
	}
	o.printf("ready %d %s", pid, self.StartID)
	if !procWaitStart(in) {
		return 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		procWaitEOF(in)
		cancel()
	}()
	tmp := fmt.Sprintf("%s.tmp.%s.%d", s.Counter, host, pid)
	n := 0
	for ctx.Err() == nil {
		lctx, lcancel := context.WithTimeout(ctx, s.timeout())
		err := l.Lock(lctx)
		lcancel()
		if err != nil {
			if ctx.Err() != nil {
				break // told to stop while waiting
			}
			return fail("Lock: %v", err)
		}
		t0 := time.Now().UnixNano()
		tok := l.Token()
		err = procChaosHold(l, s, tmp, tok, host, pid, t0)
		if uerr := l.Unlock(); err == nil && uerr != nil {
			procAppendLine(s.Log, fmt.Sprintf("error %d %s %d unlock: %s", tok, host, pid, procOneLine(uerr.Error())))
			err = fmt.Errorf("unlock: %w", uerr)
		}
		if err != nil {
			return fail("hold with token %d: %v", tok, err)
		}
		n++
	}
	o.printf("done %d", n)
	return 0
}

// procChaosHold is the work done while holding: read the counter, log
// "begin", write the counter plus one, log "end".
func procChaosHold(l Locker, s HelperSpec, tmp string, tok uint64, host string, pid int, t0 int64) error {
	v := uint64(0)
	data, err := os.ReadFile(s.Counter)
	switch {
	case err == nil:
		v, err = strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || len(data) != procChaosCounterWidth+1 {
			return fmt.Errorf("counter file holds %q: torn or foreign write", data)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return err
	}
	if err := procAppendLine(s.Log, fmt.Sprintf("begin %d %s %d %d %d", tok, host, pid, t0, v)); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%0*d\n", procChaosCounterWidth, v+1), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.Counter); err != nil {
		return err
	}
	select {
	case <-l.Lost():
		procAppendLine(s.Log, fmt.Sprintf("lost %d %s %d %d", tok, host, pid, time.Now().UnixNano()))
		return errors.New("hold found lost")
	default:
	}
	t1 := time.Now().UnixNano()
	return procAppendLine(s.Log, fmt.Sprintf("end %d %s %d %d %d %d", tok, host, pid, t0, t1, v+1))
}
