//go:build unix

package main

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// A neighbour (or the user) has a large file at the lock path: checkPath
// read it whole (os.ReadFile) to tell a lock file from a data file — a
// sparse file of a terabyte, made in an instant, took as long and as much
// memory as reading a terabyte, whatever -w said. A record is at most
// stale.MaxRecordSize bytes: no more need be read.
func TestReviewCheckPathBigFileNotReadWhole(t *testing.T) {
	dir := testdir.New(t)
	p := filepath.Join(dir, "x.data")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if tg, err := checkPath(p, formatDir); err != nil || tg.object != p {
		t.Fatalf("checkPath of a data file: %+v, %v; want its companion lock", tg, err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("checkPath of a 256 MiB file allocated %d bytes; want under 1 MiB (a record is small)", got)
	}
}
