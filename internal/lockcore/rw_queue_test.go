package lockcore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// plantWaiter writes a writer's (or reader's) queue record with sequence
// number seq, naming this process, or if dead a process of this host
// that is gone (its start time is not this process's: the PID was
// reused). It returns the record's path.
func plantWaiter(t *testing.T, queue string, seq uint64, writer, dead bool) (string, stale.Owner) {
	t.Helper()
	mode := stale.ModeShared
	if writer {
		mode = stale.ModeExclusive
	}
	o, err := stale.Self(0, mode, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if dead {
		o.StartID = "1"
	}
	if err := os.MkdirAll(queue, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(queue, queueName(seq, writer, o.UUID))
	if err := os.WriteFile(name, o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name, o
}

// queuedDirLock is a lock directory's handle and the path of its queue.
func queuedDirLock(t *testing.T) (*Lock, string) {
	path := filepath.Join(testdir.New(t), "x.lock")
	return newDirLock(t, path), path + ".queue"
}

// scheduleTo hands l's free lock on (S4) and checks that it went to want.
func scheduleTo(t *testing.T, l *Lock, want stale.Owner, who string) {
	t.Helper()
	if err := l.rw.in(nil).schedule(); err != nil {
		t.Fatal(err)
	}
	data, err := l.rw.dir.Read()
	if err != nil {
		t.Fatalf("P after the handoff: %v", err)
	}
	if got, err := stale.Parse(data); err != nil || got.UUID != want.UUID {
		t.Fatalf("P handed to %q (%v), want %s %s", got.UUID, err, who, want.UUID)
	}
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := os.Lstat(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// A handoff to a queue of writers reads the records up to the first live
// writer's, and no further: each read (and the judgement of its process)
// was done under the guard, which every waiter needs to queue, for every
// waiter at every handoff. The records behind are read when their turn
// comes; a dead waiter's among them, never read, stays until then.
func TestScheduleReadsUpToTheFirstLiveWriter(t *testing.T) {
	l, queue := queuedDirLock(t)
	deadHead, _ := plantWaiter(t, queue, 1, true, true)
	head, o := plantWaiter(t, queue, 2, true, false)
	deadBehind, _ := plantWaiter(t, queue, 3, true, true)
	behind, _ := plantWaiter(t, queue, 4, true, false)

	scheduleTo(t, l, o, "the first live writer")
	for _, c := range []struct {
		name, what string
		want       bool
	}{
		{deadHead, "a dead waiter before the first live one (read, and dropped)", false},
		{head, "the writer handed the lock (dequeued)", false},
		{deadBehind, "a dead waiter behind the first live writer (not read)", true},
		{behind, "a live writer behind it", true},
	} {
		if got := exists(t, c.name); got != c.want {
			t.Errorf("%s: there %v, want %v", c.what, got, c.want)
		}
	}
}

// Where readers queue, a handoff reads every record: a group takes every
// waiting reader, wherever it queues.
func TestScheduleReadsAllWhenReadersQueue(t *testing.T) {
	l, queue := queuedDirLock(t)
	writer, w := plantWaiter(t, queue, 1, true, false)
	deadReader, _ := plantWaiter(t, queue, 2, false, true)
	reader, _ := plantWaiter(t, queue, 3, false, false)

	// No history: queue order, so the writer goes first; the dead reader
	// is read (and dropped) all the same.
	scheduleTo(t, l, w, "the writer")
	if exists(t, writer) || exists(t, deadReader) || !exists(t, reader) {
		t.Errorf("queue after the handoff: writer %v (want false), dead reader %v (want false), live reader %v (want true)",
			exists(t, writer), exists(t, deadReader), exists(t, reader))
	}
}

// A waiter queues after the last live waiter, found from the back of the
// queue: the records before it are not read.
func TestEnqueueReadsFromTheBack(t *testing.T) {
	l, queue := queuedDirLock(t)
	deadFront, _ := plantWaiter(t, queue, 1, true, true)
	plantWaiter(t, queue, 7, true, false)
	deadBack, _ := plantWaiter(t, queue, 9, true, true)

	me, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	name, e, err := l.rw.in(nil).enqueue(me, true)
	if e != nil {
		e.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := queueName(8, true, me.UUID); name != want {
		t.Errorf("queued as %s, want %s (after the last live waiter, 7)", name, want)
	}
	if !exists(t, deadFront) || exists(t, deadBack) {
		t.Errorf("dead waiters: at the front %v (want true: not read), at the back %v (want false: read and dropped)",
			exists(t, deadFront), exists(t, deadBack))
	}
}

// The head of a queue's host line (W8) rings for each hand-over to a
// writer of this host, once: again for a waiter handed the lock anew under
// the same UUID (its first hand-over lapsed, and it queued again), never
// for its own record, a group's anchor or a process of another host.
func TestRingForEachLocalHandOver(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newDirLock(t, path)
	f, ok := openHostLine(filepath.Base(testdir.New(t)) + ".ringtest" + queueLineSuffix)
	if !ok {
		t.Skip("no host lines here (openHostLine refused: not Unix, or no private directory of lines)")
	}
	defer f.close()
	q := handedTo(t, l, time.Now())
	q.line = &hostLine{f: f, head: true}
	rec := func(mode string, token uint64, edit func(*stale.Owner)) []byte {
		o, err := stale.Self(token, mode, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(&o)
		}
		return o.Marshal()
	}
	other := rec(stale.ModeExclusive, 7, nil)
	first, err := stale.Parse(other)
	if err != nil {
		t.Fatal(err)
	}
	again := rec(stale.ModeExclusive, 9, func(r *stale.Owner) { r.UUID = first.UUID })
	for _, c := range []struct {
		what string
		data []byte
		want bool
	}{
		{"a hand-over to a writer of this host", other, true},
		{"the same hand-over, seen again", other, false},
		{"a new hand-over to the same waiter (a new token)", again, true},
		{"the waiter's own record", rec(stale.ModeExclusive, 10, func(r *stale.Owner) { r.UUID = q.me.UUID }), false},
		{"a group's anchor", rec(stale.ModeShared, 11, nil), false},
		{"a writer of another host", rec(stale.ModeExclusive, 12, func(r *stale.Owner) { r.Host = "elsewhere" }), false},
		{"no record", nil, false},
	} {
		if got := q.ringFor(c.data); got != c.want {
			t.Errorf("%s: rang %v, want %v", c.what, got, c.want)
		}
	}
	q.line.head = false
	if q.ringFor(rec(stale.ModeExclusive, 13, nil)) {
		t.Error("a follower rang")
	}
}

// A head that gives up its place in its host's line (W8) rings the bell
// once its flock is free, so that a follower heads the line at once rather
// than after its backoff, while no one of the host looked at the server.
func TestLeavingHeadRings(t *testing.T) {
	path := filepath.Join(testdir.New(t), "x.lock")
	l := newDirLock(t, path)
	name := filepath.Base(testdir.New(t)) + ".leavetest" + queueLineSuffix
	head, ok := openHostLine(name)
	if !ok {
		t.Skip("no host lines here (openHostLine refused: not Unix, or no private directory of lines)")
	}
	follower, _ := openHostLine(name)
	defer follower.close()
	if !head.tryLock() || follower.tryLock() {
		t.Fatal("the first to try does not head the line alone")
	}
	w := &wakePoint{ch: make(chan struct{})}
	stop, watched := watchPathOK(follower.bellPath(), w)
	if !watched {
		t.Skip("inotify refused: the bell cannot be watched here")
	}
	defer stop()
	rung := w.channel()
	q := handedTo(t, l, time.Now())
	q.line, q.stopBell = &hostLine{f: head, head: true}, func() {}
	q.closeLine(true) // gives up
	select {
	case <-rung:
	case <-time.After(10 * time.Second):
		t.Fatal("the head left its line without ringing the bell")
	}
	if !follower.tryLock() {
		t.Error("the follower cannot head the line after the head left it")
	}
}
