package locktest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock"
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
	RoleWatch:   procWatch,
	RoleChaos:   procChaos,
	RoleChaosRW: procChaos,
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
	l, err := procOpen(k, s, opts)
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

// procChaos plays RoleChaos and, on a dotlock.RWMutex, RoleChaosRW.
func procChaos(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	if s.Counter == "" || s.Log == "" {
		return fail("%s role needs Counter and Log", s.Role)
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
	mixed := s.Role == RoleChaosRW
	var l Locker
	var rw *dotlock.RWMutex
	if mixed {
		rw, err = procNewRW(k, s.Path, opts)
		l = rw
	} else {
		l, err = k.New(s.Path, opts...)
	}
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
	rng := rand.New(rand.NewPCG(uint64(pid), uint64(time.Now().UnixNano())))
	tmp := fmt.Sprintf("%s.tmp.%s.%d", s.Counter, host, pid)
	n := 0
	for ctx.Err() == nil {
		shared := mixed && rng.IntN(2) == 0
		lctx, lcancel := context.WithTimeout(ctx, s.timeout())
		if shared {
			err = rw.RLock(lctx)
		} else {
			err = l.Lock(lctx)
		}
		lcancel()
		if err != nil {
			if ctx.Err() != nil {
				break // told to stop while waiting
			}
			return fail("Lock (shared=%v): %v", shared, err)
		}
		t0 := time.Now().UnixNano()
		tok := l.Token()
		var uerr error
		if shared {
			err = procChaosReadHold(l, s, tok, host, pid, t0, rng)
			uerr = rw.RUnlock()
		} else {
			err = procChaosHold(l, s, tmp, tok, host, pid, t0)
			uerr = l.Unlock()
		}
		if err == nil && uerr != nil {
			procAppendLine(s.Log, fmt.Sprintf("error %d %s %d unlock: %s", tok, host, pid, procOneLine(uerr.Error())))
			err = fmt.Errorf("unlock: %w", uerr)
		}
		if err != nil {
			return fail("hold with token %d (shared=%v): %v", tok, shared, err)
		}
		n++
	}
	o.printf("done %d", n)
	return 0
}

// procChaosReadCounter reads the chaos counter (0 if there is none yet).
func procChaosReadCounter(name string) (uint64, error) {
	data, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || len(data) != procChaosCounterWidth+1 {
		return 0, fmt.Errorf("counter file holds %q: torn or foreign write", data)
	}
	return v, nil
}

// procChaosLost logs and reports a hold found lost.
func procChaosLost(l Locker, s HelperSpec, tok uint64, host string, pid int) error {
	select {
	case <-l.Lost():
		procAppendLine(s.Log, fmt.Sprintf("lost %d %s %d %d", tok, host, pid, time.Now().UnixNano()))
		return errors.New("hold found lost")
	default:
		return nil
	}
}

// procChaosHold is an exclusive hold's work: read the counter, log
// "begin", write the counter plus one, log "end".
func procChaosHold(l Locker, s HelperSpec, tmp string, tok uint64, host string, pid int, t0 int64) error {
	v, err := procChaosReadCounter(s.Counter)
	if err != nil {
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
	if err := procChaosLost(l, s, tok, host, pid); err != nil {
		return err
	}
	t1 := time.Now().UnixNano()
	return procAppendLine(s.Log, fmt.Sprintf("end %d %s %d %d %d %d", tok, host, pid, t0, t1, v+1))
}

// procChaosReadHold is a shared hold's work: read the counter, log
// "begin ... shared", read it again a moment later, log "end ... shared".
func procChaosReadHold(l Locker, s HelperSpec, tok uint64, host string, pid int, t0 int64, rng *rand.Rand) error {
	v, err := procChaosReadCounter(s.Counter)
	if err != nil {
		return err
	}
	if err := procAppendLine(s.Log, fmt.Sprintf("begin %d %s %d %d %d shared", tok, host, pid, t0, v)); err != nil {
		return err
	}
	// The work of a reader: it lasts a little, so that readers overlap
	// (not a synchronisation: nothing waits for anything here).
	time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
	v2, err := procChaosReadCounter(s.Counter)
	if err != nil {
		return err
	}
	if err := procChaosLost(l, s, tok, host, pid); err != nil {
		return err
	}
	t1 := time.Now().UnixNano()
	return procAppendLine(s.Log, fmt.Sprintf("end %d %s %d %d %d %d shared", tok, host, pid, t0, t1, v2))
}
