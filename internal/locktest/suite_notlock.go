package locktest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// testNotALock: whatever stands at a lock path that dotlock did not make —
// a user's file or directory, a symlink, a FIFO, an oversized record — is
// reported at once with an error matching ErrNotLock, by TryLock, Lock,
// Owner and Break (even forced), and nothing in the directory changes: not
// after the grace period, not ever. (dotlock once waited 5 s, then moved a
// user's directory aside and removed it recursively.)
func testNotALock(t *testing.T, k Kind) {
	const grace = 50 * time.Millisecond
	rec := selfRecord
	dead := func(t *testing.T) []byte {
		o, err := stale.Self(9, stale.ModeExclusive, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		o.PID = freePID(t)
		return o.Marshal()
	}
	write := func(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }
	type plantFunc func(t *testing.T, path string) error
	cases := []struct {
		name  string
		plant plantFunc
		kinds string // "" for both
	}{
		// (On Windows a lock directory without a record is listed only
		// after the grace period — see PROTOCOL, Windows — so there the
		// first two directory cases are told by Lock, not by TryLock.)
		{"DataFile", func(t *testing.T, p string) error { return write(p, []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n")) }, ""},
		{"BinaryFile", func(t *testing.T, p string) error { return write(p, []byte("\x00\xffnot a lock record at all\n\n")) }, ""},
		{"HugeRecord", func(t *testing.T, p string) error { return k.Plant(p, paddedRecord(rec(t), 4*stale.MaxRecordSize)) }, ""},
		{"UserDirectory", func(t *testing.T, p string) error {
			if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
				return err
			}
			return write(filepath.Join(p, "f"), []byte("1\n2\n3\n"))
		}, ""},
		{"DirectoryWithDataOwner", func(t *testing.T, p string) error {
			return k.Plant(p, []byte("my notes\n"))
		}, "lockdir"},
		{"DeadLockWithUserFile", func(t *testing.T, p string) error {
			if err := k.Plant(p, dead(t)); err != nil {
				return err
			}
			return write(filepath.Join(p, "notes.txt"), []byte("keep me\n"))
		}, "lockdir"},
		{"EmptyDirWithUserSubdir", func(t *testing.T, p string) error {
			return os.MkdirAll(filepath.Join(p, "r.not-a-uuid"), 0o755)
		}, "lockdir"},
		{"FIFO", func(t *testing.T, p string) error {
			if runtime.GOOS == "windows" {
				t.Skip("no FIFOs on Windows")
			}
			return mkfifo(p)
		}, ""},
		{"Symlink", func(t *testing.T, p string) error {
			if runtime.GOOS == "windows" {
				t.Skip("Wine's symlinks are not reparse points: Windows code cannot tell them (and Windows needs a privilege to make one)")
			}
			target := filepath.Join(filepath.Dir(p), "target")
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
			if err := write(filepath.Join(target, "owner"), rec(t)); err != nil {
				return err
			}
			if err := os.Symlink(target, p); err != nil {
				t.Skipf("cannot make a symlink here: %v", err)
			}
			return nil
		}, ""},
	}
	for _, c := range cases {
		if c.kinds != "" && c.kinds != k.Name {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newInproc(t, k)
			if err := c.plant(t, e.path); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, e.dir)
			l := e.open(lockcore.WithGrace(grace), lockcore.WithStaleAfter(4*grace))
			err := l.TryLock()
			ownerless := c.name == "UserDirectory" || c.name == "EmptyDirWithUserSubdir"
			if !(runtime.GOOS == "windows" && ownerless && errors.Is(err, lockcore.ErrLocked)) {
				wantNotLock(t, "TryLock", err, e.path)
			}
			start := time.Now()
			err = lockFor(l, 40*grace) // many grace periods: it must not wait them out
			wantNotLock(t, "Lock", err, e.path)
			if d := time.Since(start); d >= 40*grace {
				t.Errorf("Lock took %v: it waited for its context instead of refusing", d)
			}
			// (A dead lock with a user's file beside its record still names
			// its owner: it is breaking it that is refused.)
			if _, err := l.Owner(); !errors.Is(err, lockcore.ErrNotLock) && c.name != "DeadLockWithUserFile" && !(runtime.GOOS == "windows" && ownerless) {
				t.Errorf("Owner: %v, want an error matching ErrNotLock", err)
			}
			b, err := lockcore.New(e.path, k.Store, lockcore.WithGrace(grace))
			if err != nil {
				t.Fatal(err)
			}
			{
				for _, force := range []bool{false, true} {
					ctx, cancel := context.WithTimeout(context.Background(), 40*grace)
					_, err := b.Break(ctx, force)
					cancel()
					wantNotLock(t, "Break", err, e.path)
				}
			}
			if l.Token() != 0 {
				t.Errorf("holds token %d over something that is not a lock", l.Token())
			}
			if after := snapshot(t, e.dir); after != before {
				t.Errorf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// wantNotLock checks that err matches ErrNotLock and is an *fs.PathError
// naming the lock path or a path under it.
func wantNotLock(t *testing.T, op string, err error, path string) {
	t.Helper()
	if !errors.Is(err, lockcore.ErrNotLock) {
		t.Errorf("%s: %v, want an error matching ErrNotLock", op, err)
		return
	}
	pe := wantPathErr(t, err, path)
	if pe != nil && !strings.HasPrefix(pe.Path, path) {
		t.Errorf("%s: error names %s, want the lock path %s", op, pe.Path, path)
	}
}

// testStrangerDuringHold: a file of someone else's put into a lock
// directory while it is held is not removed by the release: the hold ends
// (its record goes to P.last, with its token), the directory stays with
// the file in it, and from then on the path reads as not a lock.
func testStrangerDuringHold(t *testing.T, k Kind) {
	if k.Name != "lockdir" {
		t.Skip("lock directories only: a lock file has nothing inside")
	}
	e := newInproc(t, k)
	l := e.open()
	if err := l.TryLock(); err != nil {
		t.Fatal(err)
	}
	token := l.Token()
	notes := filepath.Join(e.path, "notes.txt")
	if err := os.WriteFile(notes, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock with a stranger's file inside: %v", err)
	}
	if got, err := os.ReadFile(notes); err != nil || string(got) != "keep me\n" {
		t.Errorf("the stranger's file after Unlock: %q, %v", got, err)
	}
	if last, err := os.ReadFile(e.path + ".last"); err != nil {
		t.Errorf("no last record after the release: %v", err)
	} else if o, err := stale.Parse(last); err != nil || o.Token != token {
		t.Errorf("last record: token %d (%v), want the released hold's %d", o.Token, err, token)
	}
	// (Windows tells an ownerless directory after the grace period: P10.)
	if err := e.open().TryLock(); !(runtime.GOOS == "windows" && errors.Is(err, lockcore.ErrLocked)) {
		wantNotLock(t, "TryLock after", err, e.path)
	}
}

// testCauses: a LockedError says why, as a value (dotlock.Cause), for each
// kind of holder a TryLock can meet.
func testCauses(t *testing.T, k Kind) {
	rec := selfRecord
	for _, c := range []struct {
		name  string
		want  dotlock.Cause
		setup func(t *testing.T, e *inproc) Locker
	}{
		{"Alive", dotlock.HeldAlive, func(t *testing.T, e *inproc) Locker {
			e.plant(rec(t)) // names this process, which runs
			return e.open()
		}},
		{"WithinLease", dotlock.HeldWithinLease, func(t *testing.T, e *inproc) Locker {
			e.plant(rec(t))
			return e.open(lockcore.WithChecker(ElsewhereChecker(t)))
		}},
		{"BeingWritten", dotlock.BeingWritten, func(t *testing.T, e *inproc) Locker {
			r := rec(t)
			e.plant(r[:len(r)/2])
			return e.open()
		}},
		{"NewerFormat", dotlock.NewerFormat, func(t *testing.T, e *inproc) Locker {
			e.plant([]byte("dotlock owner record v9\nuuid: 7c0f5e0e-future\nend\n"))
			return e.open()
		}},
		{"ThisHandle", dotlock.HeldByThisHandle, func(t *testing.T, e *inproc) Locker {
			l := e.open()
			if err := l.TryLock(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Unlock() })
			return l
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newInproc(t, k)
			le := wantLocked(t, c.setup(t, e).TryLock(), e.path)
			if le.Cause != c.want {
				t.Errorf("Cause = %v (%q), want %v", le.Cause, le.Reason, c.want)
			}
		})
	}
}

// selfRecord is a record of this process's, token 9: a live holder's.
func selfRecord(t *testing.T) []byte {
	o, err := stale.Self(9, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return o.Marshal()
}
