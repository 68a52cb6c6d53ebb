package lockcore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// P10: a lock directory that, once its record is out, still holds only a
// name a network filesystem gives a removed file that is still open
// (.nfsXXXX) is moved aside to P.gone.<id>, so that the path is free; the
// file in it is not removed (it goes when its holder closes it).
func TestTransientNameMovedAside(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "x.lock")
	l := newDirLock(t, path)
	if err := l.TryLock(); err != nil {
		t.Fatal(err)
	}
	silly := ".nfs000000000012345600000001"
	if err := os.WriteFile(filepath.Join(path, silly), []byte("still open elsewhere"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("Unlock with a transient name inside: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the lock path after Unlock: %v, want it free", err)
	}
	var aside []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "x.lock"+goneInfix) {
			aside = append(aside, e.Name())
		}
	}
	if len(aside) != 1 {
		t.Fatalf("moved aside: %q, want one x.lock.gone.<id>", aside)
	}
	if got, err := os.ReadFile(filepath.Join(dir, aside[0], silly)); err != nil || string(got) != "still open elsewhere" {
		t.Errorf("the transient file in %s: %q, %v; want it kept", aside[0], got, err)
	}
	if err := l.TryLock(); err != nil {
		t.Errorf("TryLock after: %v", err)
	} else {
		l.Unlock()
	}
}
