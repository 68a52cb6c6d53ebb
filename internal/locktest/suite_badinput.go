package locktest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// testBadInput: paths and planted entries that are not locks get a clear
// error (an *fs.PathError naming the lock path), never ErrLocked, never a
// hang, and nothing at the path or behind a symlink is changed.
func testBadInput(t *testing.T, k Kind) {
	isDir := k.RecordPath("p") != "p" // the lock is a directory holding its record

	// deadRecord is a record whose holder is proven dead: planted behind a
	// symlink, it would be removed by an implementation following the link.
	deadRecord := func(t *testing.T, e *inproc) []byte {
		_, rec := e.record(3, func(o *stale.Owner) { o.PID = freePID(t) })
		return rec
	}
	// elsewhere is a directory beside the lock, for symlink targets.
	elsewhere := func(t *testing.T, e *inproc) string {
		d := filepath.Join(e.dir, "elsewhere")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	write := func(t *testing.T, name string, data []byte) {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(t *testing.T, target, name string) {
		err := os.Symlink(target, name)
		if runtime.GOOS == "windows" {
			// Windows lets only privileged users (or developer mode) make
			// symlinks; Wine 8.0 reports success and makes nothing.
			if st, lerr := os.Lstat(name); err != nil || lerr != nil || st.Mode()&fs.ModeSymlink == 0 {
				t.Skipf("cannot make a symlink here (os.Symlink: %v; Lstat: %v)", err, lerr)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// refused checks that TryLock, Lock and Owner all fail at once with a
	// clear error mentioning want, and that nothing in the directory changed.
	refused := func(t *testing.T, e *inproc, want string) {
		t.Helper()
		before := snapshot(t, e.dir)
		l := e.open()
		err := within(t, ipPatience, "TryLock", l.TryLock)
		checkRefusal(t, "TryLock", err, e.path, want)
		err = within(t, ipPatience, "Lock", func() error { return lockFor(l, ipPatience/2) })
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock waited for its deadline instead of failing: %v", err)
		} else {
			checkRefusal(t, "Lock", err, e.path, want)
		}
		if l.Token() != 0 {
			t.Errorf("holds token %d after a refusal", l.Token())
		}
		_, err = within(t, ipPatience, "Owner", func() ownerResult { o, err := l.Owner(); return ownerResult{o, err} }).split()
		if err == nil {
			t.Errorf("Owner() of a non-lock entry succeeded")
		} else {
			wantPathErr(t, err, e.path)
		}
		if after := snapshot(t, e.dir); after != before {
			t.Errorf("directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}

	t.Run("EmptyPath", func(t *testing.T) {
		t.Parallel()
		l, err := k.New("")
		if err == nil {
			t.Fatalf("New(\"\") = %v, want an error", l)
		}
		wantPathErr(t, err, "")
		if !strings.Contains(err.Error(), "empty") {
			t.Errorf("error %q does not say the path is empty", err)
		}
	})
	t.Run("MissingParent", func(t *testing.T) {
		t.Parallel()
		dir := testdir.New(t)
		missing := filepath.Join(dir, "missing")
		p := filepath.Join(missing, "x.lock")
		l, err := k.New(p)
		if err == nil {
			t.Fatalf("New in a missing directory = %v, want an error", l)
		}
		wantPathErr(t, err, p)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Errorf("error %q does not say that directory %s does not exist", err, missing)
		}
		if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New created %s", missing)
		}
	})
	t.Run("ParentIsFile", func(t *testing.T) {
		t.Parallel()
		dir := testdir.New(t)
		file := filepath.Join(dir, "file")
		write(t, file, []byte("data"))
		p := filepath.Join(file, "x.lock")
		_, err := k.New(p)
		if err == nil {
			t.Fatalf("New under a regular file: no error")
		}
		wantPathErr(t, err, p)
		if !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("error %q does not say %s is not a directory", err, file)
		}
	})
	t.Run("TrailingSeparator", func(t *testing.T) {
		t.Parallel()
		p := testdir.New(t) + string(filepath.Separator)
		if _, err := k.New(p); err == nil {
			t.Errorf("New(%q) with a trailing separator: no error", p)
		}
	})
	t.Run("WrongType", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		if isDir {
			// A lock directory's path is a regular file.
			write(t, e.path, deadRecord(t, e))
			refused(t, e, "regular file")
		} else {
			// A lock file's path is a directory with contents.
			if err := os.Mkdir(e.path, 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(e.path, "owner"), deadRecord(t, e))
			refused(t, e, "directory")
		}
	})
	t.Run("SymlinkToFile", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		target := filepath.Join(elsewhere(t, e), "target")
		write(t, target, deadRecord(t, e))
		symlink(t, target, e.path)
		refused(t, e, "symlink")
	})
	t.Run("SymlinkToDir", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		target := filepath.Join(elsewhere(t, e), "target")
		if err := os.Mkdir(target, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(target, lockcore.OwnerFile), deadRecord(t, e))
		symlink(t, target, e.path)
		refused(t, e, "symlink")
	})
	t.Run("DanglingSymlink", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		target := filepath.Join(elsewhere(t, e), "nothing")
		symlink(t, target, e.path)
		refused(t, e, "symlink")
	})
	if isDir {
		t.Run("SymlinkRecord", func(t *testing.T) {
			t.Parallel()
			e := newInproc(t, k)
			target := filepath.Join(elsewhere(t, e), "target")
			write(t, target, deadRecord(t, e))
			if err := os.Mkdir(e.path, 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, target, e.recordPath())
			refused(t, e, "symlink")
		})
	}
	t.Run("FIFO", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		if err := mkfifo(e.path); err != nil {
			t.Skipf("cannot make a FIFO here: %v", err)
		}
		refused(t, e, "not a lock")
	})
	if isDir {
		t.Run("FIFORecord", func(t *testing.T) {
			t.Parallel()
			e := newInproc(t, k)
			if err := os.Mkdir(e.path, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := mkfifo(e.recordPath()); err != nil {
				t.Skipf("cannot make a FIFO here: %v", err)
			}
			refused(t, e, "not a lock")
		})
	}
	// A planted P.last is not dotlock's: never followed, never blocked on,
	// never replaced or removed — refused at once (ErrNotLock), as at P.
	t.Run("SymlinkLast", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		target := filepath.Join(elsewhere(t, e), "target")
		_, rec := e.record(77, nil)
		write(t, target, rec)
		symlink(t, target, e.path+".last")
		before := snapshot(t, e.dir)
		l := e.open()
		wantNotLock(t, "TryLock beside a symlinked P.last", l.TryLock(), e.path)
		if got, err := os.ReadFile(target); err != nil || string(got) != string(rec) {
			t.Errorf("symlink target changed: %q, %v", got, err)
		}
		if after := snapshot(t, e.dir); after != before {
			t.Errorf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("FIFOLast", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		if err := mkfifo(e.path + ".last"); err != nil {
			t.Skipf("cannot make a FIFO here: %v", err)
		}
		l := e.open()
		err := within(t, ipPatience, "TryLock beside a FIFO", l.TryLock)
		wantNotLock(t, "TryLock beside a FIFO at P.last", err, e.path)
		if st, err := os.Lstat(e.path + ".last"); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("the FIFO at P.last is gone or changed: %v, %v", st, err)
		}
	})
	t.Run("ReadOnlyDir", func(t *testing.T) {
		t.Parallel()
		if runtime.GOOS == "windows" {
			t.Skip("Windows has no read-only directories: the read-only attribute does not stop creating files in one (only an ACL would)")
		}
		if os.Geteuid() == 0 {
			t.Skip("running as root: permission bits do not stop root, so a read-only directory cannot be made here")
		}
		e := newInproc(t, k)
		l := e.open()
		if err := os.Chmod(e.dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(e.dir, 0o755) })
		err := l.TryLock()
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("TryLock in a read-only directory: %v, want fs.ErrPermission", err)
		}
		wantPathErr(t, err, e.path)
		if ns := names(t, e.dir); len(ns) != 0 {
			t.Errorf("entries created in a read-only directory: %q", ns)
		}
	})
	// A dead holder's lock that cannot be removed is reported as a
	// *BreakError naming the holder and the cause, and left as it was.
	unremovable := func(t *testing.T, e *inproc, dead stale.Owner, cause error) {
		t.Helper()
		before := snapshot(t, e.dir)
		l := e.open()
		for _, call := range []struct {
			name string
			f    func() error
		}{
			{"TryLock", l.TryLock},
			{"Lock", func() error { return lockFor(l, ipPatience/2) }},
		} {
			err := within(t, ipPatience, call.name, call.f)
			if err == nil {
				t.Fatalf("%s over an unremovable dead lock succeeded", call.name)
			}
			var be *lockcore.BreakError
			if !errors.As(err, &be) {
				t.Fatalf("%s: %v (%T), want a *lockcore.BreakError", call.name, err, err)
			}
			if be.Owner == nil || be.Owner.UUID != dead.UUID || !strings.Contains(be.Reason, "no process") || be.Err == nil {
				t.Errorf("%s: BreakError %+v does not name the dead holder %s and the cause", call.name, be, dead.UUID)
			}
			if cause != nil && !errors.Is(err, cause) {
				t.Errorf("%s: %v does not match %v", call.name, err, cause)
			}
			if errors.Is(err, lockcore.ErrLocked) {
				t.Errorf("%s: BreakError matches ErrLocked", call.name)
			}
			wantPathErr(t, err, e.path)
		}
		if l.Token() != 0 {
			t.Errorf("holds token %d", l.Token())
		}
		if after := snapshot(t, e.dir); after != before {
			t.Errorf("directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}
	plantDead := func(t *testing.T, e *inproc) stale.Owner {
		dead, rec := e.record(12, func(o *stale.Owner) { o.PID = freePID(t) })
		e.plant(rec)
		return dead
	}
	// The record cannot be moved because P.last, where it must go, is a
	// non-empty directory.
	t.Run("UnremovableLastIsDir", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		dead := plantDead(t, e)
		if err := os.Mkdir(e.path+".last", 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(e.path+".last", "keep"), []byte("precious"))
		unremovable(t, e, dead, nil)
	})
	// The record may not be moved: it is immutable (chattr +i, which binds
	// root too), or, for a lock directory and a user other than root, the
	// directory is read-only. (Another user's lock file in a sticky
	// directory would need a second user.)
	t.Run("UnremovablePermission", func(t *testing.T) {
		t.Parallel()
		e := newInproc(t, k)
		dead := plantDead(t, e)
		ierr := setImmutable(e.recordPath(), true)
		switch {
		case runtime.GOOS == "windows":
			t.Skip("Windows has no permission bits or immutable attribute to make a dead lock unremovable (only an ACL would, which Wine does not enforce)")
		case ierr == nil:
			t.Cleanup(func() {
				if err := setImmutable(e.recordPath(), false); err != nil {
					t.Errorf("clearing the immutable attribute of %s: %v", e.recordPath(), err)
				}
			})
		case isDir && os.Geteuid() != 0:
			if err := os.Chmod(e.path, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(e.path, 0o755) })
		case os.Geteuid() == 0:
			t.Skipf("running as root, for whom permission bits are no obstacle, and the immutable attribute is not available here: %v", ierr)
		default:
			t.Skipf("a lock file this user may not remove needs another user's file in a sticky directory, and the immutable attribute is not available (%v)", ierr)
		}
		unremovable(t, e, dead, fs.ErrPermission)
	})
}

type ownerResult struct {
	o   stale.Owner
	err error
}

func (r ownerResult) split() (stale.Owner, error) { return r.o, r.err }

// checkRefusal checks an error for an entry that is not a lock.
func checkRefusal(t *testing.T, op string, err error, path, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded on an entry that is not a lock", op)
		return
	}
	if errors.Is(err, lockcore.ErrLocked) {
		t.Errorf("%s: %v: matches ErrLocked, want an error saying what is wrong", op, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q does not mention %q", op, err, want)
	}
	wantPathErr(t, err, path)
}
