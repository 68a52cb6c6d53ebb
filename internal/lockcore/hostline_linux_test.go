package lockcore

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A host line's file lives in a directory only its user may enter, on a
// local filesystem: one that others could write in (or a symlink planted
// at its name) could hold a planted line's head for ever, and a network
// filesystem's flock is not this host's. Such a directory gives no line,
// and the waiter polls as before.
func TestHostLineNeedsPrivateDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := filepath.Join(tmp, "dotlock-lines-"+strconv.Itoa(os.Geteuid()))

	f, ok := openHostLine("a")
	if !ok {
		t.Fatal("no line in a fresh private directory")
	}
	g, ok := openHostLine("a")
	if !ok {
		t.Fatal("no second place in the line")
	}
	if !f.tryLock() || g.tryLock() {
		t.Fatal("the line's head is not exclusive")
	}
	f.close()
	if !g.tryLock() {
		t.Fatal("the head did not pass on when the first left")
	}
	g.close()

	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, ok := openHostLine("a"); ok {
		t.Error("a line in a directory others may write")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, ok := openHostLine("a"); ok {
		t.Error("a line file others may open for writing")
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if _, ok := openHostLine("b"); ok {
		t.Error("a line through a symlink")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, dir); err != nil {
		t.Fatal(err)
	}
	if _, ok := openHostLine("a"); ok {
		t.Error("a line in a directory reached through a symlink")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}

	// A $TMPDIR on a network filesystem: its flock is not this host's.
	if _, ok := openHostLine("a"); !ok {
		t.Fatal("no line in a fresh private directory")
	}
	networkDirs.Store(dir, classNetwork)
	defer networkDirs.Delete(dir)
	if _, ok := openHostLine("a"); ok {
		t.Error("a line on a network filesystem")
	}
}

// A flock that fails other than "held by another" (here: no such
// descriptor) makes its caller a head: no waiter waits for a head that
// may never be.
func TestHostLineFlockErrorMakesHead(t *testing.T) {
	if !(lineFile{fd: -1}).tryLock() {
		t.Error("a line whose flock fails (EBADF) kept its waiter from heading it")
	}
}

// A long waiter's mark (W7) sets the times of dotlock's P.want, an empty
// file, and of nothing else planted at its name: not a directory, a
// non-empty file (a user's), nor what a symlink points to.
func TestTouchNowLeavesStrangersAlone(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	target := filepath.Join(dir, "target")
	for name, make := range map[string]func(string) error{
		"dir":      func(p string) error { return os.Mkdir(p, 0o755) },
		"nonempty": func(p string) error { return os.WriteFile(p, []byte("data"), 0o644) },
		"symlink": func(p string) error {
			if err := os.WriteFile(target, nil, 0o644); err != nil {
				return err
			}
			return os.Symlink(target, p)
		},
		"want": func(p string) error { return os.WriteFile(p, nil, 0o644) },
	} {
		p := filepath.Join(dir, name)
		if err := make(p); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{p, target} {
			if err := os.Chtimes(f, old, old); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		err := touchNow(p)
		moved := func(f string) bool {
			st, err := os.Lstat(f)
			return err == nil && !st.ModTime().Equal(old)
		}
		switch {
		case name == "want" && (err != nil || !moved(p)):
			t.Errorf("%s: touchNow: %v, time moved %v; want it marked", name, err, moved(p))
		case name == "symlink" && (err == nil || moved(target)):
			t.Errorf("%s: touchNow: %v; its target was marked", name, err)
		case name != "want" && name != "symlink" && (err == nil || moved(p)):
			t.Errorf("%s: touchNow: %v; it was marked", name, err)
		}
	}
}
