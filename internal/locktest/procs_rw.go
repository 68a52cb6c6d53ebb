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

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/stale"
)

// Helper roles for shared/exclusive locks (lockdir.Lock). They work only
// under the lockdir Kind: they take the lock through lockdir.New.
const (
	// RoleRW holds a lockdir.New handle on Path and obeys commands, one
	// per stdin line, answering each with one line:
	//
	//	rlock, lock        RLock / Lock (bounded by Timeout): "held TOKEN"
	//	                   (or "timeout")
	//	tryrlock, trylock  TryRLock / TryLock: "held TOKEN", or
	//	                   "locked HOST/PID,... | MESSAGE" naming the
	//	                   holders of the ErrLocked
	//	runlock, unlock    RUnlock / Unlock: "released" or
	//	                   "unlock-error MESSAGE"
	//
	// Any other error ends the helper with "error MESSAGE". It prints
	// "ready PID STARTID" first; on stdin EOF it releases what it holds and
	// exits.
	RoleRW = "rw"
	// RoleChaosRW is RoleChaos on a lockdir.New handle where each hold is,
	// at random, exclusive (Lock; logged and counted as RoleChaos does) or
	// shared (RLock): a shared hold reads the counter, logs
	// "begin TOKEN HOST PID T0 V shared", reads the counter again a few
	// milliseconds later, and logs "end TOKEN HOST PID T0 T1 V2 shared"
	// (V2 must equal V: no writer ran meanwhile). Dead readers are removed
	// without OnBreak, so a shared hold ended by a kill has no break line.
	RoleChaosRW = "chaos-rw"
)

func init() {
	procMoreRoles[RoleRW] = procRW
	procMoreRoles[RoleChaosRW] = procChaosRW
}

func procNewRW(k Kind, path string, opts []lockcore.Option) (*lockdir.Lock, error) {
	if k.Name != "lockdir" {
		return nil, fmt.Errorf("shared/exclusive roles need the lockdir kind, not %q", k.Name)
	}
	return lockdir.New(path, opts...)
}

func procRW(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	self, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		return fail("stale.Self: %v", err)
	}
	l, err := procNewRW(k, s.Path, opts)
	if err != nil {
		return fail("New: %v", err)
	}
	o.printf("ready %d %s", os.Getpid(), self.StartID)
	shared, exclusive := 0, false
	for line := range in {
		cmd := strings.TrimSpace(line)
		var err error
		switch cmd {
		case "rlock", "lock":
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
			if cmd == "rlock" {
				err = l.RLock(ctx)
			} else {
				err = l.Lock(ctx)
			}
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				o.printf("timeout")
				continue
			}
		case "tryrlock":
			err = l.TryRLock()
		case "trylock":
			err = l.TryLock()
		case "runlock", "unlock":
			if cmd == "runlock" {
				err = l.RUnlock()
				shared--
			} else {
				err = l.Unlock()
				exclusive = false
			}
			if err != nil {
				o.printf("unlock-error %s", procOneLine(err.Error()))
			} else {
				o.printf("released")
			}
			continue
		default:
			return fail("unknown command %q", cmd)
		}
		var le *lockcore.LockedError
		switch {
		case errors.As(err, &le):
			var names []string
			for _, w := range le.Owners {
				names = append(names, w.Host+"/"+strconv.Itoa(w.PID))
			}
			o.printf("locked %s | %s", strings.Join(names, ","), procOneLine(err.Error()))
		case err != nil:
			return fail("%s: %v", cmd, err)
		default:
			if strings.HasSuffix(cmd, "rlock") {
				shared++
			} else {
				exclusive = true
			}
			o.printf("held %d", l.Token())
		}
	}
	for ; shared > 0; shared-- {
		if err := l.RUnlock(); err != nil {
			return fail("RUnlock at exit: %v", err)
		}
	}
	if exclusive {
		if err := l.Unlock(); err != nil {
			return fail("Unlock at exit: %v", err)
		}
	}
	return 0
}

func procChaosRW(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	if s.Counter == "" || s.Log == "" {
		return fail("chaos-rw role needs Counter and Log")
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
		procAppendLine(s.Log, fmt.Sprintf("break %d %s %d %s %d %d %s",
			vtok, vhost, vpid, host, pid, time.Now().UnixNano(), procOneLine(reason)))
	}))
	l, err := procNewRW(k, s.Path, opts)
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
		shared := rng.IntN(2) == 0
		lctx, lcancel := context.WithTimeout(ctx, s.timeout())
		if shared {
			err = l.RLock(lctx)
		} else {
			err = l.Lock(lctx)
		}
		lcancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fail("Lock (shared=%v): %v", shared, err)
		}
		t0 := time.Now().UnixNano()
		tok := l.Token()
		var uerr error
		if shared {
			err = procChaosReadHold(l, s, tok, host, pid, t0, rng)
			uerr = l.RUnlock()
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

// procChaosReadHold is a shared hold's work: read the counter, log
// "begin ... shared", read it again a moment later, log "end ... shared".
func procChaosReadHold(l *lockdir.Lock, s HelperSpec, tok uint64, host string, pid int, t0 int64, rng *rand.Rand) error {
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
	select {
	case <-l.Lost():
		procAppendLine(s.Log, fmt.Sprintf("lost %d %s %d %d", tok, host, pid, time.Now().UnixNano()))
		return errors.New("shared hold found lost")
	default:
	}
	t1 := time.Now().UnixNano()
	return procAppendLine(s.Log, fmt.Sprintf("end %d %s %d %d %d %d shared", tok, host, pid, t0, t1, v2))
}
