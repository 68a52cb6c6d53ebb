package lockdir_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock/lockdir"
)

// WriteFile replaces a file whole under the exclusive lock; OpenRead reads
// it under a shared lock, so it never sees a write half done.
func ExampleOpenRead() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "settings.txt")
	ctx := context.Background()

	if err := lockdir.WriteFile(ctx, name, []byte("colour = blue\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	f, err := lockdir.OpenRead(ctx, name)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %q\n", buf[:n])
	fmt.Println("guarded by", filepath.Base(lockdir.LockPath(name)))
	// Output:
	// read "colour = blue\n"
	// guarded by settings.txt.lock
}

// Transform is a read-modify-write that no other reader or writer
// interleaves with.
func ExampleTransform() {
	dir, err := os.MkdirTemp("", "dotlock-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "count")
	ctx := context.Background()

	for range 3 {
		err := lockdir.Transform(ctx, name, 0o644, func(old []byte) ([]byte, error) {
			return append(old, '+'), nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	data, err := lockdir.ReadFile(ctx, name)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	// Output: +++
}
