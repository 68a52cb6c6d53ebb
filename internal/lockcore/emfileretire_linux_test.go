package lockcore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/stale"
)

const emfileRetireEnv = "DOTLOCK_TEST_EMFILE_RETIRE" // the guard's path, in the child

// TestEMFILERetireInDirectory: where calls are made through a descriptor
// of the lock's directory (dirHandles: FUSE), moving a guard aside and
// removing it (B5, and a stale guard's break) needs a second descriptor
// to read what moved. With one left (the section's own, for B5), it goes
// by name instead: it put the guard back and failed, and a guard left
// naming a live process stops every acquirer for the guard's lease. The directory is tmpfs taken for
// FUSE's; the descriptors run out in a child process.
func TestEMFILERetireInDirectory(t *testing.T) {
	if guard := os.Getenv(emfileRetireEnv); guard != "" {
		emfileRetireChild(t, guard)
		return
	}
	dir := shmDir(t)
	for _, how := range []string{"store", "section"} {
		guard := filepath.Join(dir, how+".lock"+guardSuffix)
		out, err := inChild(t, "TestEMFILERetireInDirectory", emfileRetireEnv, guard)
		if err != nil {
			t.Fatalf("child (%s): %v\n%s", how, err, out)
		}
		if _, err := os.Lstat(guard); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the guard after its retire with one descriptor: %v; want it gone", how, err)
		}
	}
}

func emfileRetireChild(t *testing.T, guard string) {
	networkDirs.Store(filepath.Dir(guard), classFUSE)
	o, err := stale.Self(0, stale.ModeBreaker, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := o.Marshal()
	if err := os.WriteFile(guard, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	same := func(b []byte) bool { return bytes.Equal(b, rec) }
	retire := func() (bool, error) { return NewFileStore(guard).Retire(false, same) }
	free := 1
	if filepath.Base(guard) == "section.lock"+guardSuffix {
		// The section's descriptor of the directory is its one: closed,
		// it lets the retire go on by name.
		free = 0
		l := newFileLock(t, guard[:len(guard)-len(guardSuffix)])
		dir := openOpDir(l.guard.Path()) // the section's descriptor of the directory, open
		defer dir.close()
		g := l.guard.at(dir)
		if d, _ := dir.at(l.guard.Path()); d == nil {
			t.Fatal("the section has no descriptor of its directory")
		}
		retire = func() (bool, error) { return g.Retire(false, same) }
	}
	_, restore := useUpDescriptors(t, free)
	ok, err := retire()
	restore()
	if !ok || err != nil {
		t.Fatalf("retire with one descriptor left: %v, %v", ok, err)
	}
}

const emfileAcquireEnv = "DOTLOCK_TEST_EMFILE_ACQUIRE" // kind:path, in the child

// TestEMFILEAcquireFUSE: where an attempt's calls go through a descriptor
// of the lock's directory (opDir: FUSE), a process with two descriptors
// free still takes the lock, as it did by name: the lock directory's
// record is created with the one the attempt's directory held, given back
// (createExclAt), and reads go by name once a descriptor is wanting. The
// directory is tmpfs taken for FUSE's; the descriptors run out in a child
// process.
func TestEMFILEAcquireFUSE(t *testing.T) {
	if v := os.Getenv(emfileAcquireEnv); v != "" {
		kind, path, _ := strings.Cut(v, ":")
		emfileAcquireChild(t, kind, path)
		return
	}
	dir := shmDir(t)
	for _, kind := range []string{"file", "dir"} {
		path := filepath.Join(dir, kind+".lock")
		if out, err := inChild(t, "TestEMFILEAcquireFUSE", emfileAcquireEnv, kind+":"+path); err != nil {
			t.Errorf("child (%s): %v\n%s", kind, err, out)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the lock path after the child's release: %v; want it gone", kind, err)
		}
	}
}

func emfileAcquireChild(t *testing.T, kind, path string) {
	networkDirs.Store(filepath.Dir(path), classFUSE)
	l := newFileLock(t, path)
	if kind == "dir" {
		l = newDirLock(t, path)
	}
	_, restore := useUpDescriptors(t, 2)
	err := l.TryLock()
	restore()
	if err != nil {
		t.Fatalf("TryLock with two descriptors free: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}
