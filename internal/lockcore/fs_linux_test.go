package lockcore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A record inside a lock directory that has just gone must not be read
// with O_DIRECT later: statfs of the missing directory once counted as
// "network filesystem" and was cached, and reads on ext4 then failed with
// EINVAL (O_DIRECT into an unaligned buffer).
func TestDirectFlagOfMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lock")
	if f := directFlag(dir); f != 0 {
		t.Errorf("directFlag(%s) of a missing directory = %#x, want 0", dir, f)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	network, known := fsKind(dir)
	if !known {
		t.Fatalf("fsKind(%s) unknown for an existing directory", dir)
	}
	if f := directFlag(dir); (f != 0) != network {
		t.Errorf("directFlag(%s) = %#x on a filesystem with network=%v", dir, f, network)
	}
	rec := append([]byte("dotlock owner record v1\n"), bytes.Repeat([]byte(" "), 1000)...)
	if err := os.WriteFile(filepath.Join(dir, "owner"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := readRecord(filepath.Join(dir, "owner")); err != nil || len(b) != 1024 {
		t.Errorf("readRecord = %d bytes, %v; want 1024, nil", len(b), err)
	}
}

// A stranger's file at a lock directory's path that goes between the
// open (ENOTDIR) and the look at what is there must read as gone, not as
// an error: a waiter failed with "not a directory" when a file planted at
// the path was removed at that moment (faultfstest's
// TestNotLockLooksAgain, once under load).
func TestOpenLockDirStrangerGoing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.WriteFile(path, []byte("a stranger\n"), 0o644)
			os.Remove(path)
		}
	}()
	defer func() { close(stop); <-done }()
	var stranger, gone int
	for i := 0; i < 20000 && (stranger == 0 || gone == 0 || i < 5000); i++ {
		d, err := openLockDir(path)
		switch {
		case err == nil:
			d.close()
			t.Fatalf("openLockDir opened a regular file")
		case errors.Is(err, ErrNotLock):
			stranger++
		case errors.Is(err, fs.ErrNotExist):
			gone++
		default:
			t.Fatalf("openLockDir with a stranger coming and going: %v; want ErrNotLock or fs.ErrNotExist", err)
		}
	}
	t.Logf("%d looks saw the stranger, %d saw it gone", stranger, gone)
}

// On a network filesystem a record's fstat is the client's cached one
// (statx, AT_STATX_DONT_SYNC): what is used of it must be what fstat says.
func TestFstatRecordCached(t *testing.T) {
	dir := t.TempDir()
	file, fifo := filepath.Join(dir, "file"), filepath.Join(dir, "fifo")
	if err := os.WriteFile(file, make([]byte, 1024), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{file, fifo, dir} {
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var full, cached unix.Stat_t
		errFull, errCached := fstatRecord(fd, &full, false), fstatRecord(fd, &cached, true)
		unix.Close(fd)
		if errFull != nil || errCached != nil {
			t.Fatalf("%s: fstatRecord: %v, %v", name, errFull, errCached)
		}
		if cached.Dev != full.Dev || cached.Ino != full.Ino || cached.Mode != full.Mode || cached.Uid != full.Uid || cached.Size != full.Size {
			t.Errorf("%s: cached fstat dev %d ino %d mode %o uid %d size %d; fstat says %d %d %o %d %d", name,
				cached.Dev, cached.Ino, cached.Mode, cached.Uid, cached.Size, full.Dev, full.Ino, full.Mode, full.Uid, full.Size)
		}
		f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		info, err := statOpened(f)
		f.Close()
		now, lerr := os.Lstat(name)
		if err != nil || lerr != nil || !info.at(name) || info.mode().Type() != now.Mode().Type() || info.mode().Perm() != now.Mode().Perm() {
			t.Errorf("%s: statOpened = %+v, %v; Lstat = %v, %v: want the same file and mode", name, info, err, now.Mode(), lerr)
		}
	}
}
