package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

const emfileChildEnv = "DOTLOCK_TEST_EMFILE_CHILD" // kind:path, in the child

// A process out of file descriptors for longer than half the lease used to
// find its hold lost (H3 could not create the guard: EMFILE), though no one
// had taken the lock, and Unlock then returned that old error and left the
// record, naming this live process, at the path. Now only a record proven
// not ours is a lost hold, heartbeats resume with the descriptors, and
// Unlock releases. The descriptors run out in a child process, so that the
// limit touches no other test.
func TestEMFILENotLost(t *testing.T) {
	if v := os.Getenv(emfileChildEnv); v != "" {
		kind, path, _ := strings.Cut(v, ":")
		emfileChild(t, kind, path)
		return
	}
	// "-fuse": its directory taken for FUSE's, where guard sections work
	// through a descriptor of it (opDir), which a release without
	// descriptors must do without.
	for _, kind := range []string{"file", "dir", "shared", "file-early", "shared-early", "file-early-fuse", "dir-early-fuse", "shared-early-fuse"} {
		t.Run(kind, func(t *testing.T) {
			dir := testdir.New(t)
			if strings.HasSuffix(kind, "-fuse") {
				// Taken for FUSE, records are read with O_DIRECT, which
				// ext4 refuses for a buffer not aligned; tmpfs takes it.
				dir = shmDir(t)
			}
			path := filepath.Join(dir, "x.lock")
			out, err := inChild(t, "TestEMFILENotLost", emfileChildEnv, kind+":"+path)
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			t.Logf("child:\n%s", out)
			for _, p := range []string{path, path + guardSuffix} {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s after the child's release: %v", p, err)
				}
			}
		})
	}
}

// inChild runs the test name again in a child process, with the
// environment variable env set to value, and returns its output.
func inChild(t *testing.T, name, env, value string) ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+value, "GORACE=atexit_sleep_ms=0")
	return cmd.CombinedOutput()
}

// useUpDescriptors lowers the process's limit of descriptors and opens
// /dev/null until it is reached, then closes free of them again. restore
// closes the rest and restores the limit. It returns how many it opened.
func useUpDescriptors(t *testing.T, free int) (int, func()) {
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	low := saved
	low.Cur = min(saved.Cur, 128)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fds []int
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("opening until the limit: %v, want EMFILE", err)
			}
			break
		}
		fds = append(fds, fd)
	}
	if len(fds) < free {
		t.Fatalf("only %d descriptors below the limit", len(fds))
	}
	for _, fd := range fds[len(fds)-free:] {
		syscall.Close(fd)
	}
	fds = fds[:len(fds)-free]
	return len(fds) + free, func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
			t.Fatal(err)
		}
	}
}

// shmDir is a new directory on tmpfs (/dev/shm), removed after the test.
func shmDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "dotlock-emfile-")
	if err != nil {
		t.Skipf("no directory on tmpfs: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func emfileChild(t *testing.T, kind, path string) {
	const lease = 400 * time.Millisecond
	kind, fuse := strings.CutSuffix(kind, "-fuse")
	kind, early := strings.CutSuffix(kind, "-early")
	if fuse {
		networkDirs.Store(filepath.Dir(path), classFUSE)
		if !dirHandles(filepath.Dir(path)) {
			t.Fatal("not taken for FUSE")
		}
	}
	beats := make(chan error, 1000)
	var l *Lock
	if kind == "file" {
		l = newFileLock(t, path, WithStaleAfter(lease))
	} else {
		l = newDirLock(t, path, WithStaleAfter(lease))
	}
	l.cfg.AfterBeat = func(err error) {
		select {
		case beats <- err:
		default:
		}
	}
	lock, unlock := l.TryLock, l.Unlock
	if kind == "shared" {
		lock, unlock = l.TryRLock, l.RUnlock
	}
	if err := lock(); err != nil {
		t.Fatal(err)
	}
	before := beatOnDisk(t, l)
	l.mu.Lock()
	h := l.current() // its Lost channel, even once released
	l.mu.Unlock()

	// Out of descriptors.
	fds, restore := useUpDescriptors(t, 0)
	start := time.Now()
	// Heartbeats that began after a whole lease without descriptors: the
	// second hook call after it is of a beat that began after it (H3).
	lapsed, lost := 0, false
	deadline := time.NewTimer(30 * time.Second)
	for lapsed < 2 && !lost {
		select {
		case <-beats:
			if time.Since(start) > lease {
				lapsed++
			}
		case <-h.lost:
			lost = true
		case <-deadline.C:
			lost = true
		}
	}
	without := time.Since(start)
	// "early": Unlock while still out of descriptors. It has one, its
	// entry's, to close first; that is enough to release.
	var earlyErr error
	if early {
		earlyErr = unlock()
	}
	restore()
	t.Logf("%d descriptors opened; %v without any, %d heartbeats after the lease", fds, without.Round(time.Millisecond), lapsed)
	select {
	case <-h.lost:
		t.Errorf("Lost() closed though no one took the lock: %v", h.lostErr)
	default:
		if lost {
			t.Fatal("no heartbeat after the lease within 30 s")
		}
	}
	if early {
		if earlyErr != nil {
			t.Fatalf("Unlock without descriptors: %v", earlyErr)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("lock path after Unlock: %v", err)
		}
		return
	}
	// The heartbeat resumes: the record at the path advances again.
	for !lost && beatOnDisk(t, l) == before {
		select {
		case <-beats:
		case <-deadline.C:
			t.Fatal("heartbeat did not resume within 30 s")
		}
	}
	if err := unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock path after Unlock: %v", err)
	}
}

// beatOnDisk is the heartbeat counter of the handle's current hold's record.
func beatOnDisk(t *testing.T, l *Lock) uint64 {
	l.mu.Lock()
	h := l.current()
	l.mu.Unlock()
	data, err := h.read()
	if err != nil {
		t.Fatal(err)
	}
	o, err := stale.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return o.Beat
}

const takeoverEMFILEEnv = "DOTLOCK_TAKEOVER_EMFILE"

// A takeover keeps its entry's descriptor open through B5, whose read
// back of the guard needs one more: with one descriptor free, B5 failed,
// the guard stayed naming this live process (every acquirer on this host
// behind it) while its retries went on, and TryLock named this process's
// own abandoned entry as the holder (a review's probe). B6 keeps one
// spare, or does not take over. With 1 to 3 descriptors free, TryLock
// must hold (token 31) or fail, and leave no guard: locally, and on FUSE,
// where there is no takeover (the breaker acquires after B5).
func TestTakeoverOutOfDescriptors(t *testing.T) {
	if v := os.Getenv(takeoverEMFILEEnv); v != "" {
		takeoverEMFILEChild(t, v)
		return
	}
	for _, where := range []string{"local", "fuse"} {
		for free := 1; free <= 3; free++ {
			path := filepath.Join(shmDir(t), "x.lock")
			out, err := inChild(t, "TestTakeoverOutOfDescriptors", takeoverEMFILEEnv, fmt.Sprintf("%s:%d:%s", where, free, path))
			if err != nil {
				t.Errorf("%s, %d descriptors free: %v\n%s", where, free, err, out)
			}
		}
	}
}

func takeoverEMFILEChild(t *testing.T, v string) {
	f := strings.SplitN(v, ":", 3)
	free, _ := strconv.Atoi(f[1])
	path := f[2]
	if f[0] == "fuse" {
		networkDirs.Store(filepath.Dir(path), classFUSE)
	}
	plantDeadHolder(t, path, 30)
	l := newFileLock(t, path, WithStaleAfter(400*time.Millisecond), WithGrace(100*time.Millisecond))
	_, restore := useUpDescriptors(t, free)
	err := l.TryLock()
	_, gerr := os.Lstat(path + guardSuffix)
	restore()
	if err == nil {
		defer l.Unlock()
		if tok := l.Token(); tok != 31 {
			t.Errorf("token %d, want 31", tok)
		}
	}
	if gerr == nil {
		t.Errorf("TryLock with %d descriptors free (%v) left the guard standing", free, err)
	}
}
