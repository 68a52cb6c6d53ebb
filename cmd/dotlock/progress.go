package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	dl "github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/stale"
)

// progress tells the user what a wait waits for, and on whom:
//
//	waiting for /shared/jobs/x.lock: held by pid 4242 on build-7 since 10:02:11 (3m ago)
//
// On a terminal the line is redrawn in place every second (from the first
// moment with -v, else once the wait has lasted a second) and erased when
// the wait ends. Elsewhere, with -v, a line is printed each time the holder
// changes. Without -v and without a terminal, nothing is printed.
type progress struct {
	out     *os.File
	path    string
	verbose bool
	tty     bool
	width   int

	mu      sync.Mutex
	start   time.Time
	blk     *dl.LockedError
	printed string // last line printed (not a terminal)
	shown   bool   // a line is on the terminal
	stop    chan struct{}
	stopped chan struct{}
}

func newProgress(out *os.File, path string, verbose bool) *progress {
	p := &progress{out: out, path: path, verbose: verbose}
	p.width, p.tty = terminalWidth(out)
	return p
}

// begin starts a wait.
func (p *progress) begin() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = time.Now()
	if !p.tty || p.stop != nil {
		return
	}
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go p.tick(p.stop, p.stopped)
}

func (p *progress) tick(stop, stopped chan struct{}) {
	defer close(stopped)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		p.draw()
		p.mu.Unlock()
	}
}

// end ends a wait: the terminal line is erased.
func (p *progress) end() {
	if p == nil {
		return
	}
	p.mu.Lock()
	stop, stopped := p.stop, p.stopped
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
	p.mu.Lock()
	p.clear()
	p.mu.Unlock()
}

// onWait is told by the lock who is in the way.
func (p *progress) onWait(blk *dl.LockedError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blk = blk
	if p.tty {
		p.draw()
		return
	}
	if p.verbose {
		if line := p.line(); line != p.printed {
			p.printed = line
			printLine(p.out, "dotlock: %s", line)
		}
	}
}

// onBreak is told by the lock when it removed a dead holder's lock.
func (p *progress) onBreak(victim *stale.Owner, reason string) {
	if !p.verbose {
		return
	}
	who := "an unreadable record"
	if victim != nil {
		who = fmt.Sprintf("pid %d on %s", victim.PID, victim.Host)
	}
	p.say("removed the stale lock %s of %s: %s", p.path, who, reason)
}

// say prints a message line (erasing a progress line first).
func (p *progress) say(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	printLine(p.out, "dotlock: "+format, a...)
}

// draw redraws the terminal line, if it is time to show it. Called with mu.
func (p *progress) draw() {
	if !p.tty || p.blk == nil || p.start.IsZero() {
		return
	}
	if !p.verbose && time.Since(p.start) < time.Second {
		return
	}
	line := "dotlock: " + p.line()
	if p.width > 1 {
		line = truncate(line, p.width-1) // never wrap: a wrapped line cannot be redrawn
	}
	fmt.Fprintf(p.out, "\r%s\x1b[K", line)
	p.shown = true
}

// clear erases the terminal line. Called with mu.
func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.out, "\r\x1b[K")
		p.shown = false
	}
}

// line is what the wait waits for, escaped. Called with mu.
func (p *progress) line() string {
	return stale.Printable("waiting for " + p.path + ": " + describeBlock(p.blk, time.Now()))
}

// lastBlock is who was in the way last, for a timeout's message.
func (p *progress) lastBlock() *dl.LockedError {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blk
}

// describeBlock says who is in the way.
func describeBlock(blk *dl.LockedError, now time.Time) string {
	if blk == nil {
		return "held"
	}
	if len(blk.Owners) == 0 {
		return blk.Reason
	}
	o := blk.Owners[0]
	var b strings.Builder
	switch {
	case strings.HasPrefix(blk.Reason, "a writer is waiting"):
		fmt.Fprintf(&b, "queued behind a waiting writer, pid %d on %s", o.PID, o.Host)
		return b.String()
	case len(blk.Owners) > 1:
		fmt.Fprintf(&b, "held shared by pid %d on %s and %d more", o.PID, o.Host, len(blk.Owners)-1)
	case o.Mode == stale.ModeShared:
		fmt.Fprintf(&b, "held shared by pid %d on %s", o.PID, o.Host)
	default:
		fmt.Fprintf(&b, "held by pid %d on %s", o.PID, o.Host)
	}
	if !o.Acquired.IsZero() {
		fmt.Fprintf(&b, " since %s (%s)", clock(o.Acquired, now), ago(now.Sub(o.Acquired)))
	}
	if strings.Contains(blk.Reason, "lease") || strings.Contains(blk.Reason, "another") {
		b.WriteString("; " + blk.Reason)
	}
	return b.String()
}

// clock shows a time of day, with the date if it is not today.
func clock(t, now time.Time) string {
	t = t.Local()
	y, m, d := t.Date()
	if ny, nm, nd := now.Local().Date(); y == ny && m == nm && d == nd {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// ago shows an age roughly, as people say it.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// truncate shortens s to n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n < 4 {
		return string(r[:n])
	}
	return string(r[:n-3]) + "..."
}
