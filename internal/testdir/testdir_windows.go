package testdir

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// newDir is t.TempDir with a cleanup that removes entries one at a time:
// Wine 8.0 answers os.RemoveAll on a non-empty directory with "Invalid
// function", so t.TempDir's own cleanup would fail every test.
func newDir(t testing.TB) string {
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		t.Fatalf("testdir: %v", err)
	}
	t.Cleanup(func() {
		if err := removeTree(dir); err != nil {
			t.Errorf("testdir cleanup: %v", err)
		}
	})
	return dir
}

// removeTree removes dir depth first, never following a symlink or
// junction (Remove deletes the link itself).
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if err := removeTree(p); err != nil {
				return err
			}
			continue
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
