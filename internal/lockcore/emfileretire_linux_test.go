package lockcore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := shmDir(t)
	for _, how := range []string{"store", "section"} {
		guard := filepath.Join(dir, how+".lock"+guardSuffix)
		cmd := exec.Command(exe, "-test.run=^TestEMFILERetireInDirectory$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), emfileRetireEnv+"="+guard, "GORACE=atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
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
		g := l.openGuardFiles() // its descriptor of the directory, open
		defer g.close()
		if d, _ := g.o.at(l.guard.Path()); d == nil {
			t.Fatal("the section has no descriptor of its directory")
		}
		retire = func() (bool, error) { return g.retire(same) }
	}
	_, restore := useUpDescriptors(t, free)
	ok, err := retire()
	restore()
	if !ok || err != nil {
		t.Fatalf("retire with one descriptor left: %v, %v", ok, err)
	}
}
