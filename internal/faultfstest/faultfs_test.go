//go:build linux

package faultfstest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFS checks that each kind of fault does what it says, seen through the
// mount and in the backing directory.
func TestFS(t *testing.T) {
	f := MountT(t, Options{Debug: os.Getenv("FAULTFS_DEBUG") != ""})
	m := func(name string) string { return filepath.Join(f.Mount, name) }
	b := func(name string) string { return filepath.Join(f.Backing, name) }
	excl := os.O_WRONLY | os.O_CREATE | os.O_EXCL

	t.Run("passes through", func(t *testing.T) {
		if err := os.WriteFile(m("plain"), []byte("hello"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(b("plain")); err != nil || string(got) != "hello" {
			t.Fatalf("backing has %q, %v", got, err)
		}
	})

	t.Run("lost create reply", func(t *testing.T) {
		f.Set(1, Rule{Op: OpCreate, Name: "lost", Action: LostReply, Times: 1})
		defer f.Clear()
		_, err := os.OpenFile(m("lost"), excl, 0o644)
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("first create: %v, want EIO", err)
		}
		if _, err := os.Lstat(b("lost")); err != nil {
			t.Fatalf("the create did not happen: %v", err)
		}
		if _, err := os.OpenFile(m("lost"), excl, 0o644); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("retry: %v, want EEXIST", err)
		}
		if got := f.Faults(); len(got) != 1 || got[0].Action != LostReply {
			t.Fatalf("faults logged: %v", got)
		}
	})

	t.Run("fail before", func(t *testing.T) {
		f.Set(1, Rule{Op: OpMkdir, Name: "d*", Action: Fail, Errno: syscall.ENOSPC})
		defer f.Clear()
		if err := os.Mkdir(m("dir"), 0o755); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("mkdir: %v, want ENOSPC", err)
		}
		if _, err := os.Lstat(b("dir")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("mkdir happened: %v", err)
		}
		if err := os.Mkdir(m("other"), 0o755); err != nil {
			t.Fatalf("a name the rule does not match: %v", err)
		}
	})

	t.Run("torn write", func(t *testing.T) {
		fl, err := os.Create(m("torn"))
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		f.Set(1, Rule{Op: OpWrite, Name: "torn", Action: Torn, Errno: syscall.ENOSPC})
		defer f.Clear()
		if _, err := fl.WriteAt([]byte("12345678"), 0); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("write: %v, want ENOSPC (faults %v)", err, f.Faults())
		}
		if got, _ := os.ReadFile(b("torn")); string(got) != "1234" {
			t.Fatalf("backing has %q, want the first half", got)
		}
	})

	t.Run("lost rename and fsync replies; after and times", func(t *testing.T) {
		if err := os.WriteFile(b("a"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		f.Set(1,
			Rule{Op: OpRename, Name: "b", Action: LostReply},
			Rule{Op: OpFsync, Action: LostReply, After: 1, Times: 1})
		defer f.Clear()
		if err := os.Rename(m("a"), m("b")); !errors.Is(err, syscall.EIO) {
			t.Fatalf("rename: %v, want EIO", err)
		}
		if _, err := os.Lstat(b("b")); err != nil {
			t.Fatalf("rename did not happen: %v", err)
		}
		fl, err := os.OpenFile(m("b"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		for i, want := range []error{nil, syscall.EIO, nil} {
			if err := fl.Sync(); !errors.Is(err, want) && (want != nil || err != nil) {
				t.Fatalf("fsync %d: %v, want %v", i, err, want)
			}
		}
	})

	t.Run("delay", func(t *testing.T) {
		f.Set(1, Rule{Op: OpLookup, Name: "slow", Action: Delay, Delay: 100 * time.Millisecond})
		defer f.Clear()
		start := time.Now()
		os.Lstat(m("slow"))
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Fatalf("lstat took %v, want the delay of 100ms", d)
		}
	})

	t.Run("seeded probability", func(t *testing.T) {
		count := func(seed uint64) (n int) {
			f.Set(seed, Rule{Op: OpGetattr, Name: "plain", Prob: 0.5})
			defer f.Clear()
			for range 40 {
				if _, err := os.Stat(m("plain")); err != nil {
					n++
				}
			}
			return n
		}
		a, b := count(7), count(7)
		if a != b || a == 0 || a == 40 {
			t.Fatalf("seed 7 failed %d then %d of 40 stats: want the same, some but not all", a, b)
		}
	})
}
