package semaphore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/lockfile"
	"github.com/dotlock/dotlock/semaphore"
)

// An uncontended acquire + release beside the lock file a slot is: the
// semaphore adds the line (a lock directory) and a look at the slots.
// bench/ compares with other programs; this is the ratio within dotlock.
func BenchmarkUncontended(b *testing.B) {
	ctx := context.Background()
	b.Run("lockfile", func(b *testing.B) {
		m, err := lockfile.New(filepath.Join(testdir.New(b), "x.lock"))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := m.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{1, 4} {
		b.Run("semaphore/slots="+strconv.Itoa(n), func(b *testing.B) {
			s, err := semaphore.New(filepath.Join(testdir.New(b), "sem"), n)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				slot, err := s.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := slot.Release(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Contended, in one process: 2N goroutines per CPU, each with its own
// handle (as separate processes have), share N slots.
func BenchmarkContended(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run("slots="+strconv.Itoa(n), func(b *testing.B) {
			dir := filepath.Join(testdir.New(b), "sem")
			b.SetParallelism(2 * n)
			b.RunParallel(func(pb *testing.PB) {
				s, err := semaphore.New(dir, n)
				if err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					slot, err := s.Acquire(context.Background())
					if err != nil {
						b.Error(err)
						return
					}
					slot.Release()
				}
			})
		})
	}
}
