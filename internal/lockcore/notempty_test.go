package lockcore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// makeLockDir makes a directory at p and opens it as a lock directory,
// closed when t ends.
func makeLockDir(t *testing.T, p string) *lockDir {
	t.Helper()
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := openLockDir(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// TestNotEmptyActsOnItsOwnDirectory: a release moved its record out of
// its lock directory and its rmdir failed while something stands at P.
// What it finds and puts back, it finds in and puts back into the
// directory it took the record from. Its rmdir may have gone through with
// the reply lost (P6), and P be a new acquirer's directory by now: a
// shared group's, whose readers made the release put its record back
// there as the group's anchor and take itself for lost, or one whose
// record is not created yet, which was moved aside (a fault schedule,
// rmdir with a lost reply, found them). An exclusive hold's directory has
// no readers: after a release, readers are a new group's, wherever they
// are listed from (on FUSE a descriptor names a path). Under the guard
// the directory's own readers (a group that goes on) and what NFS leaves
// of a removed open file still count; and a breaker, which holds the guard (no acquirer verifies
// meanwhile: A5), still moves an empty directory aside whose rmdir failed
// (sshfs refused such rmdirs in the two-host chaos run: left, the lock
// was never taken again).
func TestNotEmptyActsOnItsOwnDirectory(t *testing.T) {
	dir := testdir.New(t)
	for _, c := range []struct {
		name     string
		own      bool     // a release (else a breaker, under the guard)
		removed  bool     // ours went through: a new directory stands at P
		inner    []string // in the directory at P when notEmpty looks
		ok       bool     // what notEmpty returns
		atP      bool     // a directory at P afterwards
		recordIn bool     // our record put back into ours
	}{
		{"new-empty", true, true, nil, true, true, false},
		{"new-group", true, true, []string{"r.6f1c2d3e-0a0b-4c0d-8e0f-101112131415"}, true, true, false},
		{"ours-group", false, false, []string{"r.6f1c2d3e-0a0b-4c0d-8e0f-101112131415"}, false, true, true},
		{"ours-nfs-leftover", true, false, []string{".nfs0000000000a1b2c300000001"}, true, false, false},
		{"broken-empty", false, false, nil, true, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".lock")
			dst := p + ".last"
			rec := []byte("our record\n")
			d := makeLockDir(t, p)
			if c.removed {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range c.inner {
				if err := os.WriteFile(filepath.Join(p, n), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(dst, rec, 0o644); err != nil {
				t.Fatal(err)
			}
			ok, err := NewDirStore(p).notEmpty(d, true, dst, c.own)
			if ok != c.ok || err != nil {
				t.Errorf("notEmpty: %v, %v; want %v, nil", ok, err, c.ok)
			}
			if _, err := os.Lstat(p); (err == nil) != c.atP {
				t.Errorf("a directory at P afterwards: %v; want %v", err == nil, c.atP)
			}
			owner, err := os.ReadFile(filepath.Join(p, OwnerFile))
			if got := err == nil && bytes.Equal(owner, rec); got != c.recordIn {
				t.Errorf("our record put back at P/owner: %v; want %v", got, c.recordIn)
			}
		})
	}
}
