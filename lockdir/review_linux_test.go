//go:build linux

package lockdir_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// awaitClose waits (at most 5 s) until the file name in the directory dir,
// watched by the inotify descriptor fd, is closed after a read.
func awaitClose(t *testing.T, fd int, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(p, 100); n <= 0 {
			continue
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nb := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			if strings.TrimRight(string(nb), "\x00") == name && ev.Mask&unix.IN_CLOSE_NOWRITE != 0 {
				return
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	t.Fatalf("%s was not read within 5 s", name)
}

// A forced break lists the group's readers through a descriptor of P, then
// waits for the breaker guard, then moves each reader's record out by name,
// P/r.<uuid>: through whatever P is by then. A neighbour who can replace P
// (its owner in a sticky directory; anyone in a writable one) holds the
// guard across the listing and puts a symlink at P to a directory of the
// user's — here a backup copy of the lock directory — whose r.<uuid> the
// break then renames and removes.
func TestReviewForceBreakReaderThroughSymlink(t *testing.T) {
	dir := testdir.New(t)
	p := filepath.Join(dir, "x.lock")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reader, err := coreDir(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	defer reader.RUnlock()
	st, err := reader.Status()
	if err != nil || len(st.Holders) != 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	name := "r." + st.Holders[0].Owner.UUID
	rec, err := os.ReadFile(filepath.Join(p, name))
	if err != nil {
		t.Fatal(err)
	}
	// The user's backup of the lock directory (cp -a x.lock backup).
	victim := filepath.Join(dir, "backup")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, name), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	// The neighbour's guard: a live breaker's record (this process's).
	g, err := stale.Self(0, stale.ModeBreaker, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".break", g.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, p, unix.IN_CLOSE_NOWRITE); err != nil {
		t.Fatal(err)
	}
	breaker, err := coreDir(p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := breaker.Break(ctx, true); done <- err }()
	awaitClose(t, ifd, name) // listed and read; now waiting for the guard
	if err := os.Rename(p, p+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p + ".break"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("forced break: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("forced break still running after 15 s")
	}
	got, err := os.ReadFile(filepath.Join(victim, name))
	if err != nil || !bytes.Equal(got, rec) {
		t.Errorf("the user's %s behind the symlink at P: %q, %v; want it untouched", name, got, err)
	}
	// Put the real lock back, for the reader's release.
	os.Remove(p)
	os.Rename(p+".real", p)
}
