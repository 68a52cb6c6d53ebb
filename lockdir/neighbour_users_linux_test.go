package lockdir_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/testusers"
	"github.com/dotlock/dotlock/lockdir"
)

// The neighbour attacks of neighbour_unix_test.go, made by a real second
// user (bob) on a lock of root's in a sticky directory, with the kernel's
// fs.protected_* link protections off (as on many NFS servers): bob's
// symlink, hard link and FIFO turn nothing of root's against root.

// asBob runs a shell command as bob, failing t if it fails.
func asBob(t *testing.T, bob testusers.User, script string) {
	t.Helper()
	out, err := testusers.Command(context.Background(), bob, 0o022, "/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("as bob: %s: %v\n%s", script, err, out)
	}
}

// rootOnly makes a root-only directory holding files named like queue
// records, and returns it with their contents.
func rootOnly(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "dotlock-rootonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"00000000000000000001.w.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f": "root's data\n",
		"00000000000000000002.r.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e40": "",
		"1.r.secrets": "root's secrets\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func TestUsersQueueSymlink(t *testing.T) {
	_, bob := testusers.Two(t)
	testusers.Unprotect(t)
	dir := testusers.Dir(t, 0o1777, "")
	victim, files := rootOnly(t)
	p := filepath.Join(dir, "x.lock")
	asBob(t, bob, "ln -s "+victim+" "+p+".queue")
	l, err := lockdir.New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Lock(ctx); err != nil {
		t.Errorf("uncontended Lock beside bob's symlinked queue: %v", err)
	} else if err := l.Unlock(); err != nil {
		t.Error(err)
	}
	if err := l.RLock(ctx); err != nil && !errors.Is(err, dotlock.ErrNotLock) {
		t.Errorf("RLock beside bob's symlinked queue: %v", err)
	} else if err == nil {
		l.RUnlock()
	}
	for n, c := range files {
		if got, err := os.ReadFile(filepath.Join(victim, n)); err != nil || string(got) != c {
			t.Errorf("root's %s: %q, %v; want %q untouched", n, got, err, c)
		}
	}
}

// bobsQueue: bob makes the queue directory himself while root holds the
// lock, so that root's waiter writes its record into a directory bob may
// change.
func bobsQueue(t *testing.T) (dir string, bob testusers.User, held func(p string)) {
	_, bob = testusers.Two(t)
	testusers.Unprotect(t)
	dir = testusers.Dir(t, 0o1777, "")
	return dir, bob, func(p string) { asBob(t, bob, "mkdir -m 0777 "+p+".queue") }
}

func TestUsersQueuedHeartbeatHardLink(t *testing.T) {
	dir, bob, held := bobsQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, record, _ := queuedWaiterIn(t, ctx, dir, held)
	own, err := os.Open(record)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	victim := filepath.Join(dir, "precious") // root's, 0600: bob can neither read nor write it
	content := bytes.Repeat([]byte("root's data\n"), 100)
	if err := os.WriteFile(victim, content, 0o600); err != nil {
		t.Fatal(err)
	}
	asBob(t, bob, "ln "+victim+" "+record+".tmp && mv -f "+record+".tmp "+record)
	start := beatOf(t, own)
	for beatOf(t, own) < start+2 {
		if ctx.Err() != nil {
			t.Fatalf("the waiter's own record stopped beating at %d after bob's swap", start)
		}
		time.Sleep(time.Millisecond)
	}
	if got, _ := os.ReadFile(victim); !bytes.Equal(got, content) {
		t.Errorf("root's file, hard-linked by bob, was written to")
	}
}

func TestUsersQueuedWaiterFIFO(t *testing.T) {
	dir, bob, held := bobsQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, record, done := queuedWaiterIn(t, ctx, dir, held)
	asBob(t, bob, "mkfifo "+record+".fifo && mv -f "+record+".fifo "+record)
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Lock with a 2 s context still waiting after 30 s: blocked on bob's FIFO")
	}
}
