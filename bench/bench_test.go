package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// benchDir is where the locks go: $BENCH_DIR (say /dev/shm) or a temporary
// directory (under $TMPDIR, /tmp by default).
func benchDir(b *testing.B) string {
	if d := os.Getenv("BENCH_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "dotlock-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// BenchmarkUncontended is scenario 1 for the in-process Go peers: one
// uncontended Lock + Unlock per iteration, on one handle, on one path.
//
//	go test -run '^$' -bench Uncontended -benchmem
//	BENCH_DIR=/dev/shm go test -run '^$' -bench Uncontended -benchmem
func BenchmarkUncontended(b *testing.B) {
	for _, name := range Uncontended {
		b.Run(name, func(b *testing.B) {
			l, err := Peers[name].New(filepath.Join(benchDir(b), "x.lock"), Settings{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Lock(); err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPeers checks that every peer locks and unlocks repeatedly on one
// path and that something is at the path while it holds (the driver's
// counter check tests exclusion across processes).
func TestPeers(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.lock")
			l, err := Peers[name].New(p, Settings{})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := l.Lock(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Lstat(p); err != nil {
					t.Fatalf("held, but nothing at %s: %v", p, err)
				}
				if err := l.Unlock(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
