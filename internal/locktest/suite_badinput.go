package locktest

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// testBadInput: paths and planted entries that are not locks get a clear
// error (an *fs.PathError naming the lock path), never ErrLocked, never a
// hang, and nothing at the path or behind a symlink is changed. Each case
// of badInputs sets a scene and says which check (badWant) it must pass.
func testBadInput(t *testing.T, k Kind) {
	isDir := k.RecordPath("p") != "p" // the lock is a directory holding its record
	for _, c := range badInputs {
		if c.dirOnly && !isDir {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := &badScene{inproc: newInproc(t, k), isDir: isDir}
			b.newPath = b.path
			if c.scene != nil {
				c.scene(t, b)
			}
			badChecks[c.want](t, c, b)
		})
	}
}

// badInput is one case of testBadInput.
type badInput struct {
	name    string
	dirOnly bool // only where the lock is a directory holding its record
	// scene sets the case up (it may skip where the scene cannot be made).
	scene   func(t *testing.T, b *badScene)
	want    badWant
	mention string // what the error must say (badNew, badRefused)
	is      error  // what the error must match, if not nil
}

// badWant is what must happen in a case of testBadInput.
type badWant int

const (
	// badNew: New(newPath) fails, with an *fs.PathError for it.
	badNew badWant = iota
	// badRefused: TryLock, Lock and Owner all fail at once, not with
	// ErrLocked, and nothing in the directory changes.
	badRefused
	// badNotLock: TryLock fails with ErrNotLock, and nothing changes.
	badNotLock
	// badDenied: TryLock fails (matching is), and creates nothing.
	badDenied
	// badUnremovable: a dead holder's lock that cannot be removed is
	// reported by TryLock and Lock as a *BreakError naming the holder and
	// the cause, and left as it was.
	badUnremovable
)

// badScene is the setting of one case: a fresh directory and lock path,
// and what the scene left for the check.
type badScene struct {
	*inproc
	isDir   bool
	newPath string      // the path New is given (badNew)
	mention string      // a further thing the error must mention (badNew)
	absent  string      // a path New must not create (badNew)
	dead    stale.Owner // the dead holder (badUnremovable)
	l       Locker      // the handle, if the scene opened it first
	after   func(t *testing.T)
}

// deadRecord is a record whose holder is proven dead: planted behind a
// symlink, it would be removed by an implementation following the link.
func (b *badScene) deadRecord(t *testing.T) []byte {
	_, rec := b.record(3, func(o *stale.Owner) { o.PID = freePID(t) })
	return rec
}

// elsewhere returns a new directory beside the lock, for symlink targets.
func (b *badScene) elsewhere(t *testing.T) string {
	d := filepath.Join(b.dir, "elsewhere")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// plantDead plants the record of a dead holder at the lock path.
func (b *badScene) plantDead(t *testing.T) {
	var rec []byte
	b.dead, rec = b.record(12, func(o *stale.Owner) { o.PID = freePID(t) })
	b.plant(rec)
}

func badWrite(t *testing.T, name string, data []byte) {
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func badMkdir(t *testing.T, name string) {
	if err := os.Mkdir(name, 0o755); err != nil {
		t.Fatal(err)
	}
}

func badSymlink(t *testing.T, target, name string) {
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

func badFIFO(t *testing.T, name string) {
	if err := mkfifo(name); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
}

// badSymlinkTo is the scene of a symlink at the lock path to target,
// made in a directory beside it by make (nil: a dangling link).
func badSymlinkTo(make func(t *testing.T, b *badScene, target string)) func(*testing.T, *badScene) {
	return func(t *testing.T, b *badScene) {
		target := filepath.Join(b.elsewhere(t), "target")
		if make != nil {
			make(t, b, target)
		}
		badSymlink(t, target, b.path)
	}
}

var badInputs = []badInput{
	{name: "EmptyPath", want: badNew, mention: "empty", scene: func(t *testing.T, b *badScene) { b.newPath = "" }},
	{name: "MissingParent", want: badNew, is: fs.ErrNotExist, scene: func(t *testing.T, b *badScene) {
		b.absent = filepath.Join(b.dir, "missing")
		b.newPath, b.mention = filepath.Join(b.absent, "x.lock"), b.absent // says which directory does not exist
	}},
	{name: "ParentIsFile", want: badNew, mention: "not a directory", scene: func(t *testing.T, b *badScene) {
		file := filepath.Join(b.dir, "file")
		badWrite(t, file, []byte("data"))
		b.newPath = filepath.Join(file, "x.lock")
	}},
	{name: "TrailingSeparator", want: badNew, scene: func(t *testing.T, b *badScene) {
		b.newPath = b.dir + string(filepath.Separator)
	}},
	// A lock directory's path is a regular file; a lock file's, a
	// directory with contents. The mention is set by the scene.
	{name: "WrongType", want: badRefused, scene: func(t *testing.T, b *badScene) {
		if b.isDir {
			badWrite(t, b.path, b.deadRecord(t))
			b.mention = "regular file"
			return
		}
		badMkdir(t, b.path)
		badWrite(t, filepath.Join(b.path, "owner"), b.deadRecord(t))
		b.mention = "directory"
	}},
	{name: "SymlinkToFile", want: badRefused, mention: "symlink", scene: badSymlinkTo(func(t *testing.T, b *badScene, target string) {
		badWrite(t, target, b.deadRecord(t))
	})},
	{name: "SymlinkToDir", want: badRefused, mention: "symlink", scene: badSymlinkTo(func(t *testing.T, b *badScene, target string) {
		badMkdir(t, target)
		badWrite(t, filepath.Join(target, lockcore.OwnerFile), b.deadRecord(t))
	})},
	{name: "DanglingSymlink", want: badRefused, mention: "symlink", scene: badSymlinkTo(nil)},
	{name: "SymlinkRecord", dirOnly: true, want: badRefused, mention: "symlink", scene: func(t *testing.T, b *badScene) {
		target := filepath.Join(b.elsewhere(t), "target")
		badWrite(t, target, b.deadRecord(t))
		badMkdir(t, b.path)
		badSymlink(t, target, b.recordPath())
	}},
	{name: "FIFO", want: badRefused, mention: "not a lock", scene: func(t *testing.T, b *badScene) { badFIFO(t, b.path) }},
	{name: "FIFORecord", dirOnly: true, want: badRefused, mention: "not a lock", scene: func(t *testing.T, b *badScene) {
		badMkdir(t, b.path)
		badFIFO(t, b.recordPath())
	}},
	// A planted P.last is not dotlock's: never followed, never blocked on,
	// never replaced or removed — refused at once (ErrNotLock), as at P.
	{name: "SymlinkLast", want: badNotLock, scene: func(t *testing.T, b *badScene) {
		target := filepath.Join(b.elsewhere(t), "target")
		_, rec := b.record(77, nil)
		badWrite(t, target, rec)
		badSymlink(t, target, b.path+".last")
		b.after = func(t *testing.T) {
			if got, err := os.ReadFile(target); err != nil || string(got) != string(rec) {
				t.Errorf("symlink target changed: %q, %v", got, err)
			}
		}
	}},
	{name: "FIFOLast", want: badNotLock, scene: func(t *testing.T, b *badScene) {
		badFIFO(t, b.path+".last")
		b.after = func(t *testing.T) {
			if st, err := os.Lstat(b.path + ".last"); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
				t.Errorf("the FIFO at P.last is gone or changed: %v, %v", st, err)
			}
		}
	}},
	{name: "ReadOnlyDir", want: badDenied, is: fs.ErrPermission, scene: func(t *testing.T, b *badScene) {
		if runtime.GOOS == "windows" {
			t.Skip("Windows has no read-only directories: the read-only attribute does not stop creating files in one (only an ACL would)")
		}
		if os.Geteuid() == 0 {
			t.Skip("running as root: permission bits do not stop root, so a read-only directory cannot be made here")
		}
		b.l = b.open()
		if err := os.Chmod(b.dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(b.dir, 0o755) })
	}},
	// The record cannot be moved because P.last, where it must go, is a
	// non-empty directory.
	{name: "UnremovableLastIsDir", want: badUnremovable, scene: func(t *testing.T, b *badScene) {
		b.plantDead(t)
		badMkdir(t, b.path+".last")
		badWrite(t, filepath.Join(b.path+".last", "keep"), []byte("precious"))
	}},
	// The record may not be moved: it is immutable (chattr +i, which binds
	// root too), or, for a lock directory and a user other than root, the
	// directory is read-only. (Another user's lock file in a sticky
	// directory would need a second user.)
	{name: "UnremovablePermission", want: badUnremovable, is: fs.ErrPermission, scene: func(t *testing.T, b *badScene) {
		b.plantDead(t)
		ierr := setImmutable(b.recordPath(), true)
		switch {
		case runtime.GOOS == "windows":
			t.Skip("Windows has no permission bits or immutable attribute to make a dead lock unremovable (only an ACL would, which Wine does not enforce)")
		case ierr == nil:
			t.Cleanup(func() {
				if err := setImmutable(b.recordPath(), false); err != nil {
					t.Errorf("clearing the immutable attribute of %s: %v", b.recordPath(), err)
				}
			})
		case b.isDir && os.Geteuid() != 0:
			if err := os.Chmod(b.path, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(b.path, 0o755) })
		case os.Geteuid() == 0:
			t.Skipf("running as root, for whom permission bits are no obstacle, and the immutable attribute is not available here: %v", ierr)
		default:
			t.Skipf("a lock file this user may not remove needs another user's file in a sticky directory, and the immutable attribute is not available (%v)", ierr)
		}
	}},
}

// badChecks are the checks of testBadInput, by badWant.
var badChecks = map[badWant]func(*testing.T, badInput, *badScene){
	badNew:         badCheckNew,
	badRefused:     badCheckRefused,
	badNotLock:     badCheckNotLock,
	badDenied:      badCheckDenied,
	badUnremovable: badCheckUnremovable,
}

func badCheckNew(t *testing.T, c badInput, b *badScene) {
	l, err := b.k.New(b.newPath)
	if err == nil {
		t.Fatalf("New(%q) = %v, want an error", b.newPath, l)
	}
	wantPathErr(t, err, b.newPath)
	for _, m := range []string{c.mention, b.mention} {
		if m != "" && !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
	if c.is != nil && !errors.Is(err, c.is) {
		t.Errorf("error %q does not match %v", err, c.is)
	}
	if b.absent != "" {
		if _, err := os.Lstat(b.absent); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New created %s", b.absent)
		}
	}
}

func badCheckRefused(t *testing.T, c badInput, b *badScene) {
	want := cmp.Or(c.mention, b.mention)
	before := snapshot(t, b.dir)
	l := b.open()
	err := within(t, ipPatience, "TryLock", l.TryLock)
	checkRefusal(t, "TryLock", err, b.path, want)
	err = within(t, ipPatience, "Lock", func() error { return lockFor(l, ipPatience/2) })
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock waited for its deadline instead of failing: %v", err)
	} else {
		checkRefusal(t, "Lock", err, b.path, want)
	}
	if l.Token() != 0 {
		t.Errorf("holds token %d after a refusal", l.Token())
	}
	_, err = within(t, ipPatience, "Owner", func() ownerResult { o, err := l.Owner(); return ownerResult{o, err} }).split()
	if err == nil {
		t.Errorf("Owner() of a non-lock entry succeeded")
	} else {
		wantPathErr(t, err, b.path)
	}
	if after := snapshot(t, b.dir); after != before {
		t.Errorf("directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func badCheckNotLock(t *testing.T, c badInput, b *badScene) {
	before := snapshot(t, b.dir)
	l := b.open()
	err := within(t, ipPatience, "TryLock", l.TryLock)
	wantNotLock(t, "TryLock beside "+c.name, err, b.path)
	if b.after != nil {
		b.after(t)
	}
	if after := snapshot(t, b.dir); after != before {
		t.Errorf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func badCheckDenied(t *testing.T, c badInput, b *badScene) {
	err := b.l.TryLock()
	if !errors.Is(err, c.is) {
		t.Fatalf("TryLock: %v, want %v", err, c.is)
	}
	wantPathErr(t, err, b.path)
	if ns := names(t, b.dir); len(ns) != 0 {
		t.Errorf("entries created: %q", ns)
	}
}

func badCheckUnremovable(t *testing.T, c badInput, b *badScene) {
	before := snapshot(t, b.dir)
	l := b.open()
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
		if be.Owner == nil || be.Owner.UUID != b.dead.UUID || !strings.Contains(be.Reason, "no process") || be.Err == nil {
			t.Errorf("%s: BreakError %+v does not name the dead holder %s and the cause", call.name, be, b.dead.UUID)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v does not match %v", call.name, err, c.is)
		}
		if errors.Is(err, lockcore.ErrLocked) {
			t.Errorf("%s: BreakError matches ErrLocked", call.name)
		}
		wantPathErr(t, err, b.path)
	}
	if l.Token() != 0 {
		t.Errorf("holds token %d", l.Token())
	}
	if after := snapshot(t, b.dir); after != before {
		t.Errorf("directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
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
