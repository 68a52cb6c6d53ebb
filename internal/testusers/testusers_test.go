package testusers

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCommand: a command runs as the user, in the shared group, with the
// umask asked for; Dir makes the mode asked for.
func TestCommand(t *testing.T) {
	alice, bob := Two(t)
	if alice.UID == bob.UID {
		t.Fatalf("alice and bob share uid %d", alice.UID)
	}
	dir := Dir(t, 0o2775, Group)
	st, err := os.Stat(dir)
	if err != nil || st.Mode()&os.ModeSetgid == 0 || st.Mode().Perm() != 0o775 {
		t.Fatalf("Dir: %v %v", st.Mode(), err)
	}
	out, err := Command(context.Background(), bob, 0o002, "/bin/sh", "-c", `id -u; id -G; umask; touch "$0"/f`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 || f[0] != strconv.Itoa(int(bob.UID)) || !strings.Contains(string(out), strconv.Itoa(int(bob.Groups[0]))) || f[len(f)-1] != "0002" {
		t.Errorf("as bob with umask 002: %q", out)
	}
	if st, err := os.Stat(dir + "/f"); err != nil || st.Mode().Perm() != 0o664 {
		t.Errorf("bob's file: %v %v", st.Mode(), err)
	}
}

// TestUnprotect: the sysctls are 0 during the test and restored after.
func TestUnprotect(t *testing.T) {
	const p = "/proc/sys/fs/protected_hardlinks"
	before, _ := os.ReadFile(p)
	t.Run("inner", func(t *testing.T) {
		Unprotect(t)
		if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) != "0" {
			t.Errorf("%s = %q during the test", p, b)
		}
	})
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Errorf("%s = %q after, was %q", p, after, before)
	}
}

// TestBinary: the dotlock binary is built once and runs as another user.
func TestBinary(t *testing.T) {
	_, bob := Two(t)
	bin := Binary(t)
	if Binary(t) != bin {
		t.Error("built twice")
	}
	out, err := Command(context.Background(), bob, 0o022, bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "dotlock ") {
		t.Errorf("dotlock --version as bob: %v: %q", err, out)
	}
}
