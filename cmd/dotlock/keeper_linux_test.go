package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
	"golang.org/x/sys/unix"
)

// After dotlock -u FD released the shell's hold, the shell's exit (its
// descriptor closing) must not make the keeper release it again: a release
// of a hold already gone decides under the guard, and made the guard's
// file in a directory the script had finished with ("directory not
// empty" when a test removed it).
func TestKeeperLeavesUnlockedAlone(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "lock") + companionSuffix
	fd := watchCreates(t, dir)
	sh := startProc(t, dir, nil, "bash", "-c", `exec 10<>lock; "$DOTLOCK" -n 10 || exit 9; "$DOTLOCK" -u 10 || exit 8; echo unlocked`)
	sh.out.wait(t, "shell", "unlocked")
	drain(fd) // what the lock and the unlock made
	if code := sh.finish(); code != 0 {
		t.Fatalf("shell: exit %d: %s", code, sh.err.text())
	}
	waitKeepersGone(t, lock)
	if made := drain(fd); len(made) > 0 {
		t.Errorf("after the shell exited, its keeper made %v in the lock's directory: it released a hold already released", made)
	}
}

// watchCreates is an inotify descriptor (closed at the test's end) told
// of every name made in dir; drain reads them.
func watchCreates(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skip("no inotify: ", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	return fd
}

// drain returns the names of the inotify events queued on fd.
func drain(fd int) []string {
	var names []string
	buf := make([]byte, 64*1024)
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return names
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			l := int(buf[off+12]) | int(buf[off+13])<<8 | int(buf[off+14])<<16 | int(buf[off+15])<<24
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+l]), "\x00")
			names = append(names, name)
			off += unix.SizeofInotifyEvent + l
		}
	}
}

// After dotlock -u released a hold taken with lock --pid, its keeper must
// make nothing in the lock's directory before it exits: a heartbeat that
// found the hold released decided so under the guard, making P.break
// after the script was done with the lock. The keeper now beats only right
// after it saw the hold still there. With a 0.2 s lease it beats every
// 50 ms and looks as often, so a beat used to fall between the unlock and
// the keeper's next look in about half of the rounds.
func TestKeeperBeatsOnlyWhileHeld(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x.dotlock")
	fd := watchCreates(t, dir)
	for round := range 6 {
		sh := startProc(t, dir, []string{"L=" + lock}, "sh", "-c",
			`"$DOTLOCK" --lock --stale-after 0.2 --pid $$ "$L" || exit 9; read x; "$DOTLOCK" -u "$L" || exit 8; echo unlocked; read x; exit 0`)
		waitKeeper(t, lock)
		fmt.Fprintln(sh.stdin)
		sh.out.wait(t, "shell", "unlocked")
		drain(fd) // what the lock and the unlock made
		waitKeepersGone(t, lock)
		made := drain(fd)
		sh.closeStdin()
		if code := sh.finish(); code != 0 {
			t.Fatalf("shell: exit %d: %s", code, sh.err.text())
		}
		if len(made) > 0 {
			t.Fatalf("round %d: after the unlock, the keeper made %v in the lock's directory", round, made)
		}
	}
}

// waitKeeper waits until lock has a keeper, heartbeating.
func waitKeeper(t *testing.T, lock string) {
	t.Helper()
	eventually(t, "a keeper of "+lock, func() bool { return len(keepers(lock)) == 1 })
}
