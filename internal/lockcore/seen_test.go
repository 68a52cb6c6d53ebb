//go:build unix

package lockcore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// TestReleaseSeesChangedSlot: a release checks the slot it replaces with
// one lstat when it is the file A3 read, unchanged (seen_unix.go). A
// user's file put there during the hold — renamed over the slot, or
// written into it in place, same size — is still refused (P10): left as
// it is, and the release says why.
func TestReleaseSeesChangedSlot(t *testing.T) {
	for _, kind := range []string{"lockfile", "lockdir"} {
		for _, how := range []string{"renamed", "rewritten"} {
			t.Run(kind+"/"+how, func(t *testing.T) {
				path := filepath.Join(testdir.New(t), "x.lock")
				slot := path + ".last"
				l := openerOf(kind)(t, path)
				if err := l.TryLock(); err != nil {
					t.Fatal(err)
				}
				if err := l.Unlock(); err != nil {
					t.Fatal(err)
				}
				if err := l.TryLock(); err != nil { // A3 reads the slot
					t.Fatal(err)
				}
				old, err := os.ReadFile(slot)
				if err != nil {
					t.Fatal(err)
				}
				user := bytes.Repeat([]byte("precious "), len(old)/9+1)[:len(old)]
				before, _ := os.Lstat(slot)
				switch how {
				case "renamed":
					if err := os.WriteFile(slot+".new", user, 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(slot+".new", slot); err != nil {
						t.Fatal(err)
					}
				case "rewritten":
					f, err := os.OpenFile(slot, os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					_, err = f.WriteAt(user, 0)
					f.Close()
					if err != nil {
						t.Fatal(err)
					}
					if after, _ := os.Lstat(slot); after.ModTime().Equal(before.ModTime()) {
						t.Skip("a write left the file's times as they were (timestamps coarser than this test's write, kernels before 6.13): the stamp cannot tell it")
					}
				}
				err = l.Unlock()
				if got, rerr := os.ReadFile(slot); rerr != nil || !bytes.Equal(got, user) {
					t.Fatalf("the user's file at %s: %q, %v; want it left as it was (Unlock: %v)", slot, got, rerr, err)
				}
				if !errors.Is(err, ErrNotLock) {
					t.Fatalf("Unlock: %v; want an error matching ErrNotLock (the slot is not a record)", err)
				}
			})
		}
	}
}
