package locktest

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// This file is the helper side: what a re-executed test binary does.

// procOut writes whole lines to stdout, one write per line, from any goroutine.
type procOut struct{ mu sync.Mutex }

func (o *procOut) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...) + "\n"
	o.mu.Lock()
	defer o.mu.Unlock()
	os.Stdout.WriteString(line)
}

// procReportingTable prints "tried PID" after each lookup: each time the lock
// judged a record naming PID.
type procReportingTable struct {
	stale.ProcessTable
	out *procOut
}

func (r procReportingTable) Lookup(pid int) (stale.Process, error) {
	p, err := r.ProcessTable.Lookup(pid)
	r.out.printf("tried %d", pid)
	return p, err
}

func (s HelperSpec) options(o *procOut) ([]lockcore.Option, error) {
	var opts []lockcore.Option
	if s.StaleAfter > 0 {
		opts = append(opts, lockcore.WithStaleAfter(s.StaleAfter))
	}
	if s.PollMax > 0 {
		opts = append(opts, lockcore.WithPoll(cmp.Or(s.PollMin, time.Millisecond), s.PollMax))
	}
	if s.ReportTries {
		ch, err := stale.NewChecker()
		if err != nil {
			return nil, err
		}
		ch.Processes = procReportingTable{ch.Processes, o}
		opts = append(opts, lockcore.WithChecker(ch))
	}
	return opts, nil
}

func (s HelperSpec) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 60 * time.Second
}

// procStdinLines delivers the lines read from stdin; the channel is closed at
// EOF (the test closed our stdin, or died).
func procStdinLines() <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// procWaitStart waits for a "start" line; false if stdin closed first.
func procWaitStart(in <-chan string) bool {
	for line := range in {
		if strings.TrimSpace(line) == "start" {
			return true
		}
	}
	return false
}

// procWaitEOF waits until stdin is closed.
func procWaitEOF(in <-chan string) {
	for range in {
	}
}

// procOpenLog opens the O_APPEND event log name.
func procOpenLog(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// procAppendLine appends line to the event log name (AppendLine).
func procAppendLine(name, line string) error {
	f, err := procOpenLog(name)
	if err != nil {
		return err
	}
	err = AppendLine(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// procRunRole plays s.Role and returns the exit status.
func procRunRole(k Kind, s HelperSpec) int {
	o := &procOut{}
	fail := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		o.printf("error %s", strings.ReplaceAll(msg, "\n", " | "))
		fmt.Fprintf(os.Stderr, "helper %s: %s\n", s.Role, msg)
		return 1
	}
	self, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		return fail("stale.Self: %v", err)
	}
	opts, err := s.options(o)
	if err != nil {
		return fail("options: %v", err)
	}
	in := procStdinLines()
	switch s.Role {
	case RoleIdle:
		o.printf("ready %d %s", os.Getpid(), self.StartID)
		procWaitEOF(in)
		return 0
	case RoleHold, RoleContend:
		l, err := procOpen(k, s, opts)
		if err != nil {
			return fail("New: %v", err)
		}
		o.printf("ready %d %s", os.Getpid(), self.StartID)
		if s.Role == RoleContend && !procWaitStart(in) {
			return 0
		}
		return procHold(l, s, o, in, fail)
	case RoleCounter:
		if s.Counter == "" || s.Log == "" {
			return fail("counter role needs Counter and Log")
		}
		n, g := s.Iterations, s.Goroutines
		if n <= 0 {
			n = 100
		}
		if g <= 0 {
			g = 1
		}
		locks := make([]Locker, g)
		for i := range locks {
			if locks[i], err = k.New(s.Path, opts...); err != nil {
				return fail("New: %v", err)
			}
		}
		o.printf("ready %d %s", os.Getpid(), self.StartID)
		if !procWaitStart(in) {
			return 0
		}
		errs := make(chan error, g)
		for _, l := range locks {
			go func() { errs <- procCount(l, s, n) }()
		}
		var all []error
		for range g {
			if err := <-errs; err != nil {
				all = append(all, err)
			}
		}
		if err := errors.Join(all...); err != nil {
			return fail("%v", err)
		}
		o.printf("done %d", n*g)
		return 0
	}
	if f := procMoreRoles[s.Role]; f != nil {
		return f(k, s, o, in, opts, fail)
	}
	return fail("unknown role %q", s.Role)
}

// procRoleFunc plays a role defined outside this file (procMoreRoles). It
// gets the options from the spec and the stdin lines, prints its own
// "ready" line, and returns the exit status.
type procRoleFunc func(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int

// procHold takes l, reports it, holds it until stdin closes, and releases it.
func procHold(l *procLocker, s HelperSpec, o *procOut, in <-chan string, fail func(string, ...any) int) int {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	err := l.lock(ctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		o.printf("timeout")
		return 0
	}
	if err != nil {
		return fail("Lock: %v", err)
	}
	tok := l.Token()
	own, err := l.own()
	if err != nil {
		return fail("our record after Lock: %v", err)
	}
	if own.Token != tok || own.PID != os.Getpid() {
		return fail("record at the path after Lock is %v, want ours (pid %d, token %d)", own, os.Getpid(), tok)
	}
	if s.Log != "" {
		if err := procAppendLine(s.Log, fmt.Sprintf("acquire %d %d", tok, os.Getpid())); err != nil {
			return fail("log: %v", err)
		}
	}
	word := "held"
	if s.Role == RoleContend {
		word = "won"
	}
	o.printf("%s %d %s", word, tok, own.UUID)
	released := make(chan struct{})
	lost := l.Lost()
	go func() {
		select {
		case <-lost:
			o.printf("lost")
		case <-released:
		}
	}()
	procWaitEOF(in)
	if s.Log != "" {
		if err := procAppendLine(s.Log, fmt.Sprintf("release %d %d", tok, os.Getpid())); err != nil {
			return fail("log: %v", err)
		}
	}
	err = l.unlock()
	close(released)
	if err != nil {
		o.printf("unlock-error %s", strings.ReplaceAll(err.Error(), "\n", " | "))
		return 0
	}
	o.printf("released")
	return 0
}

// procCount does n increments of the counter file under l.
func procCount(l Locker, s HelperSpec, n int) error {
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
		err := l.Lock(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("iteration %d: Lock: %w", i, err)
		}
		tok := l.Token()
		v := 0
		data, err := os.ReadFile(s.Counter)
		if err == nil {
			v, err = strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				err = fmt.Errorf("counter file holds %q (torn write? mutual exclusion broken)", data)
			}
		} else if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err == nil {
			err = os.WriteFile(s.Counter, []byte(strconv.Itoa(v+1)+"\n"), 0o644)
		}
		if err == nil {
			err = procAppendLine(s.Log, fmt.Sprintf("%d %d %d", os.Getpid(), tok, v+1))
		}
		if err == nil {
			select {
			case <-l.Lost():
				err = errors.New("hold found lost")
			default:
			}
		}
		if uerr := l.Unlock(); err == nil && uerr != nil {
			err = fmt.Errorf("unlock: %w", uerr)
		}
		if err != nil {
			return fmt.Errorf("iteration %d (token %d): %w", i, tok, err)
		}
	}
	return nil
}
