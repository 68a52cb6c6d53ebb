package lockcore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A record inside a lock directory that has just gone must not be read
// with O_DIRECT later: statfs of the missing directory once counted as
// "network filesystem" and was cached, and reads on ext4 then failed with
// EINVAL (O_DIRECT into an unaligned buffer).
func TestDirectFlagOfMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lock")
	if f := directFlag(dir); f != 0 {
		t.Errorf("directFlag(%s) of a missing directory = %#x, want 0", dir, f)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	network, known := fsKind(dir)
	if !known {
		t.Fatalf("fsKind(%s) unknown for an existing directory", dir)
	}
	if f := directFlag(dir); (f != 0) != network {
		t.Errorf("directFlag(%s) = %#x on a filesystem with network=%v", dir, f, network)
	}
	rec := append([]byte("dotlock owner record v1\n"), bytes.Repeat([]byte(" "), 1000)...)
	if err := os.WriteFile(filepath.Join(dir, "owner"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := readRecord(filepath.Join(dir, "owner")); err != nil || len(b) != 1024 {
		t.Errorf("readRecord = %d bytes, %v; want 1024, nil", len(b), err)
	}
}
