package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testusers"
	"github.com/dotlock/dotlock/stale"
)

// Sharing a lock between real users (issue 13): the tests run dotlock as
// testusers.Alice and testusers.Bob, made by root in the test set-up.

// usersRun is one run of dotlock as a user.
type usersRun struct {
	out, errOut string
	code        int
	took        time.Duration
}

// runAs runs dotlock with args as u, with umask, bounded by a minute.
func runAs(t *testing.T, u testusers.User, umask int, args ...string) usersRun {
	t.Helper()
	return runProgAs(t, u, umask, dotlockBin, args...)
}

// shAs runs the shell script as u; $1... are args.
func shAs(t *testing.T, u testusers.User, script string, args ...string) {
	t.Helper()
	if r := runProgAs(t, u, 0o022, "/bin/sh", append([]string{"-c", script, "sh"}, args...)...); r.code != 0 {
		t.Fatalf("%s as %s: exit %d: %s", script, u.Name, r.code, r.errOut)
	}
}

func runProgAs(t *testing.T, u testusers.User, umask int, prog string, args ...string) usersRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := testusers.Command(ctx, u, umask, prog, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := usersRun{out: out.String(), errOut: errOut.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("dotlock %v as %s: %v", args, u.Name, err)
	}
	return r
}

// usersKinds are the lock kinds a test runs for: lockfile, lockdir
// exclusive, lockdir shared.
var usersKinds = []struct{ name, flag string }{{"file", "--file"}, {"dir", "-x"}, {"shared", "-s"}}

// TestUsersTakeTurnsSticky: alice and bob take turns on one lock in a
// sticky, world-writable directory (/tmp's mode). Each turn must succeed
// promptly (the bug: bob's release could not replace alice's x.lock.last,
// retried for the whole 30 s lease and wedged the lock), and the fencing
// tokens must keep increasing.
func TestUsersTakeTurnsSticky(t *testing.T) {
	alice, bob := testusers.Two(t)
	for _, k := range usersKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := testusers.Dir(t, 0o1777, "")
			lock := filepath.Join(dir, "x.dotlock")
			var last uint64
			for i := range 8 {
				u := []testusers.User{alice, bob}[i%2]
				r := runAs(t, u, 0o022, k.flag, "--stale-after", "30s", lock, "sh", "-c", "echo $DOTLOCK_TOKEN")
				if r.code != 0 || r.took > 10*time.Second {
					t.Fatalf("turn %d (%s): exit %d after %v, want 0 promptly: %s", i, u.Name, r.code, r.took.Round(time.Millisecond), r.errOut)
				}
				tok, err := strconv.ParseUint(strings.TrimSpace(r.out), 10, 64)
				if err != nil || tok <= last {
					t.Fatalf("turn %d (%s): token %q after %d, want a greater one", i, u.Name, r.out, last)
				}
				t.Logf("turn %d: %s token %d in %v", i, u.Name, tok, r.took.Round(time.Millisecond))
				last = tok
			}
			file := []string{}
			if k.flag == "--file" {
				file = append(file, "--file")
			}
			st := runAs(t, alice, 0o022, append(append([]string{"--status"}, file...), lock)...)
			if want := "last token " + strconv.FormatUint(last, 10); !strings.Contains(st.out, want) {
				t.Errorf("status: %q, want %q", st.out, want)
			}
		})
	}
}

// killedHolder leaves a lock held by a dead process of u: dotlock, run as
// u, takes the lock and its command SIGKILLs it.
func killedHolder(t *testing.T, u testusers.User, umask int, flag, lock string) {
	t.Helper()
	r := runAs(t, u, umask, flag, lock, "sh", "-c", "kill -9 $PPID")
	if r.code != 128+9 && r.code != -1 {
		t.Fatalf("%s's dotlock, SIGKILLed: exit %d: %s", u.Name, r.code, r.errOut)
	}
}

// TestUsersDeadForeignSticky: a dead bob's lock in a sticky directory
// cannot be broken by alice (only bob or root may move his files). That is
// inherent; what is owed is an error at once (not after retrying for the
// lease), exit 77, naming the file and its owner and what to do.
//
// Also in a directory without the sticky bit, for a lock directory of bob's
// that alice may not write (his umask 022): there her failed break used to
// delete her own x.lock.last first, losing the token history.
func TestUsersDeadForeignSticky(t *testing.T) {
	alice, bob := testusers.Two(t)
	for _, c := range []struct {
		kind string
		flag string
		mode os.FileMode
	}{{"file", "--file", 0o1777}, {"dir", "-x", 0o1777}, {"dir-nonsticky", "-x", 0o777}} {
		t.Run(c.kind, func(t *testing.T) {
			dir := testusers.Dir(t, c.mode, "")
			lock := filepath.Join(dir, "x.dotlock")
			if r := runAs(t, alice, 0o022, c.flag, lock, "true"); r.code != 0 {
				t.Fatalf("alice's first turn: exit %d: %s", r.code, r.errOut)
			}
			killedHolder(t, bob, 0o022, c.flag, lock)
			r := runAs(t, alice, 0o022, c.flag, "-w", "60", lock, "true")
			t.Logf("alice after %v: exit %d: %s", r.took.Round(time.Millisecond), r.code, r.errOut)
			if r.code != exitNoPerm || r.took > 5*time.Second {
				t.Fatalf("alice: exit %d after %v, want %d at once", r.code, r.took, exitNoPerm)
			}
			for _, want := range []string{"x.dotlock", bob.Name, "uid " + strconv.Itoa(int(bob.UID)), "only that user or root"} {
				if !strings.Contains(r.errOut, want) {
					t.Errorf("message %q does not mention %q", r.errOut, want)
				}
			}
			// The failed break kept alice's last record (the token history).
			if _, err := os.Lstat(lock + ".last"); err != nil {
				t.Errorf("alice's last record: %v", err)
			}
		})
	}
}

// TestUsersTeamTakeover: in a team directory (setgid 2775, owned by the
// users' shared group) with umask 002, bob takes over the lock of alice's
// dead holder. The bug: records were always 0644 and lock directories 0755,
// whatever the umask, so bob could not move alice's record.
func TestUsersTeamTakeover(t *testing.T) {
	alice, bob := testusers.Two(t)
	for _, k := range usersKinds[:2] {
		t.Run(k.name, func(t *testing.T) {
			dir := testusers.Dir(t, 0o2775, testusers.Group)
			lock := filepath.Join(dir, "x.dotlock")
			killedHolder(t, alice, 0o002, k.flag, lock)
			r := runAs(t, bob, 0o002, k.flag, "-w", "20", lock, "sh", "-c", "echo $DOTLOCK_TOKEN")
			if r.code != 0 || strings.TrimSpace(r.out) != "2" {
				t.Fatalf("bob: exit %d, token %q, want 0 and 2: %s", r.code, r.out, r.errOut)
			}
		})
	}
}

// TestUsersModes: by default the lock's files are 0666 and its directories
// 0777, less the umask; --mode sets them exactly.
func TestUsersModes(t *testing.T) {
	alice, _ := testusers.Two(t)
	for _, c := range []struct {
		umask     int
		mode      []string
		file, dir string
	}{
		{0o022, nil, "644", "755"},
		{0o002, nil, "664", "775"},
		{0o022, []string{"--mode", "0660"}, "660", "770"},
	} {
		dir := testusers.Dir(t, 0o1777, "")
		lock := filepath.Join(dir, "x.dotlock")
		stat := []string{"stat", "-c", "%a", lock + "/owner", lock}
		args := append(append(c.mode, lock), stat...)
		r := runAs(t, alice, c.umask, args...)
		if want := c.file + "\n" + c.dir + "\n"; r.code != 0 || r.out != want {
			t.Errorf("umask %03o %v: exit %d, modes %q, want %q: %s", c.umask, c.mode, r.code, r.out, want, r.errOut)
		}
		args = append(append(append([]string{"--file"}, c.mode...), filepath.Join(dir, "xf.dotlock")), "stat", "-c", "%a", filepath.Join(dir, "xf.dotlock"))
		if r := runAs(t, alice, c.umask, args...); r.code != 0 || r.out != c.file+"\n" {
			t.Errorf("--file, umask %03o %v: exit %d, mode %q, want %q: %s", c.umask, c.mode, r.code, r.out, c.file, r.errOut)
		}
		// The command runs with the caller's umask, whatever --mode says.
		if r := runAs(t, alice, c.umask, append(append(c.mode, lock), "sh", "-c", "umask")...); strings.TrimSpace(r.out) != fmt.Sprintf("%04o", c.umask) {
			t.Errorf("umask %03o %v: the command's umask is %q", c.umask, c.mode, r.out)
		}
	}
}

// TestUsersPlantedGuard: bob plants a breaker guard (x.lock.break) in a
// sticky directory. He can block the lock — anyone who can write the
// directory can — but alice must be told within the grace period (5 s)
// which file blocks her and whose it is, not hang for minutes; status
// must say so too.
func TestUsersPlantedGuard(t *testing.T) {
	alice, bob := testusers.Two(t)
	for _, k := range usersKinds[:2] {
		for _, content := range []string{"", `garbage\001\n`} { // printf formats
			t.Run(fmt.Sprintf("%s/%d", k.name, len(content)), func(t *testing.T) {
				dir := testusers.Dir(t, 0o1777, "")
				lock := filepath.Join(dir, "x.dotlock")
				shAs(t, bob, `printf "$1" > "$2"`, content, lock+".break")
				r := runAs(t, alice, 0o022, k.flag, "-w", "60", lock, "true")
				t.Logf("alice after %v: exit %d: %s", r.took.Round(time.Millisecond), r.code, r.errOut)
				// An empty guard may be one being written: it stands for the
				// grace period, then is bob's to remove (77). Garbage is no
				// dotlock guard at all: not a lock (65), at once (P10).
				code, within, says := exitNoPerm, 20*time.Second, "only that user or root"
				if content != "" {
					code, within, says = exitDataErr, 2*time.Second, "not a dotlock record"
				}
				if r.code != code || r.took > within {
					t.Errorf("alice: exit %d after %v, want %d within %v", r.code, r.took, code, within)
				}
				for _, want := range []string{"x.dotlock.break", bob.Name, says} {
					if !strings.Contains(r.errOut, want) {
						t.Errorf("message %q does not mention %q", r.errOut, want)
					}
				}
				file := []string{"--status"}
				if k.flag == "--file" {
					file = append(file, "--file")
				}
				st := runAs(t, alice, 0o022, append(file, lock)...)
				if !strings.Contains(st.out, "x.dotlock.break exists, owned by user "+bob.Name) {
					t.Errorf("status: %q does not name the guard and bob", st.out)
				}
			})
		}
	}
}

// forgedRecord is a valid record of this host and boot naming PID 1 with
// its real start: a holder that never dies, unless the record's file owner
// is compared with PID 1's user.
func forgedRecord(t *testing.T) []byte {
	t.Helper()
	o, err := stale.Self(41, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := (stale.SystemProcesses{}).Lookup(1)
	if err != nil || !p.Exists {
		t.Skipf("PID 1 cannot be looked up: %v", err)
	}
	o.PID, o.StartID, o.Started = 1, p.StartID, p.Started
	return o.Marshal()
}

// TestUsersForgedRecord: bob plants a record naming PID 1 at alice's lock
// path. In a directory alice may write (0777, not sticky) she breaks it
// and takes the lock (it waited for ever: PID 1 lives); in a sticky one
// she cannot move bob's file, and is told so at once.
func TestUsersForgedRecord(t *testing.T) {
	alice, bob := testusers.Two(t)
	rec := forgedRecord(t)
	src := filepath.Join(testusers.Dir(t, 0o755, ""), "forged")
	if err := os.WriteFile(src, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range usersKinds[:2] {
		for _, mode := range []os.FileMode{0o777, 0o1777} {
			t.Run(fmt.Sprintf("%s/%o", k.name, mode), func(t *testing.T) {
				dir := testusers.Dir(t, mode, "")
				lock := filepath.Join(dir, "x.dotlock")
				if k.flag == "--file" {
					shAs(t, bob, `cp "$1" "$2"`, src, lock)
				} else {
					// Bob's lock directory, as open as sharing needs it.
					shAs(t, bob, `mkdir -m 777 "$2" && cp "$1" "$2/owner"`, src, lock)
				}
				r := runAs(t, alice, 0o022, k.flag, "-w", "20", lock, "sh", "-c", "echo $DOTLOCK_TOKEN")
				t.Logf("alice after %v: exit %d: %s", r.took.Round(time.Millisecond), r.code, r.errOut)
				if mode&0o1000 == 0 {
					if r.code != 0 || strings.TrimSpace(r.out) != "42" {
						t.Errorf("alice: exit %d, token %q, want 0 and 42", r.code, r.out)
					}
					return
				}
				if r.code != exitNoPerm || r.took > 5*time.Second {
					t.Errorf("alice: exit %d after %v, want %d at once", r.code, r.took, exitNoPerm)
				}
				for _, want := range []string{"not proven alive", bob.Name, "only that user or root"} {
					if !strings.Contains(r.errOut, want) {
						t.Errorf("message %q does not mention %q", r.errOut, want)
					}
				}
			})
		}
	}
}

// TestUsersPlantedGuardShortWait: with a wait shorter than the grace
// period, alice gives up (exit 1) within that period: the cleanup of her
// entry, which needs the guard, goes on watching the guard she watched
// rather than watching it for a grace period of its own (or for the lease).
func TestUsersPlantedGuardShortWait(t *testing.T) {
	alice, bob := testusers.Two(t)
	dir := testusers.Dir(t, 0o1777, "")
	lock := filepath.Join(dir, "x.dotlock")
	shAs(t, bob, `: > "$1"`, lock+".break")
	// -w 3: watching the guard afresh after the wait would end after 8 s.
	r := runAs(t, alice, 0o022, "--file", "-w", "3", lock, "true")
	t.Logf("alice after %v: exit %d: %s", r.took.Round(time.Millisecond), r.code, r.errOut)
	if r.code != exitConflict || r.took > 6500*time.Millisecond {
		t.Errorf("alice: exit %d after %v, want %d within the grace period (5 s)", r.code, r.took, exitConflict)
	}
}

// TestUsersLockPidForeign: bob may not take a lock for a process he could
// not signal (PID 1): it would stay attributed to it for as long as it
// runs. He may for his own.
func TestUsersLockPidForeign(t *testing.T) {
	_, bob := testusers.Two(t)
	for _, k := range usersKinds[:2] {
		t.Run(k.name, func(t *testing.T) {
			lock := filepath.Join(testusers.Dir(t, 0o1777, ""), "x.dotlock")
			r := runAs(t, bob, 0o022, "--lock", k.flag, "--pid", "1", lock)
			t.Logf("bob: exit %d: %s", r.code, r.errOut)
			if r.code != exitNoPerm || !strings.Contains(r.errOut, "pid 1") {
				t.Errorf("lock --pid 1 as bob: exit %d, want %d naming pid 1", r.code, exitNoPerm)
			}
			if _, err := os.Lstat(lock); err == nil {
				t.Errorf("lock --pid 1 left %s", lock)
			}
			// His own process (the shell that runs dotlock): allowed.
			if r := runProgAs(t, bob, 0o022, "/bin/sh", "-c", `"$0" --lock `+k.flag+` --pid $$ "$1" && "$0" -u --pid $$ "$1"`, dotlockBin, lock); r.code != 0 {
				t.Errorf("lock --pid $$ as bob: exit %d: %s", r.code, r.errOut)
			}
		})
	}
}
