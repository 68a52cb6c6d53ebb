//go:build !windows

package locktest

import "os"

// openWriteShared opens name for writing as dotlock does for its own record.
func openWriteShared(name string) (*os.File, error) { return os.OpenFile(name, os.O_WRONLY, 0) }
