package locktest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// Bench measures an uncontended lock+unlock of k beside the raw primitive
// it is built on, in the same run: O_CREAT|O_EXCL + write + close + unlink
// of a record-sized file, and mkdir + write owner file + remove both.
func Bench(b *testing.B, k Kind) {
	o, err := stale.Self(1, stale.ModeExclusive, timeNow())
	if err != nil {
		b.Fatal(err)
	}
	rec := o.Marshal()
	b.Run("dotlock", func(b *testing.B) {
		l, err := k.New(filepath.Join(testdir.New(b), "x.lock"))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-excl", func(b *testing.B) {
		p := filepath.Join(testdir.New(b), "x.lock")
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			f.Write(rec)
			f.Close()
			if err := os.Remove(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-mkdir", func(b *testing.B) {
		p := filepath.Join(testdir.New(b), "x.lock")
		owner := filepath.Join(p, "owner")
		b.ReportAllocs()
		for b.Loop() {
			if err := os.Mkdir(p, 0o755); err != nil {
				b.Fatal(err)
			}
			f, err := os.OpenFile(owner, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			f.Write(rec)
			f.Close()
			os.Remove(owner)
			if err := os.Remove(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
