//go:build !windows

package locktest

import "os"

// openWriteShared opens name for writing as dotlock does for its own record.
func openWriteShared(name string) (*os.File, error) { return os.OpenFile(name, os.O_WRONLY, 0) }

// AppendLine appends line and a newline to f, opened with O_APPEND, in one
// write, which POSIX makes atomic among the processes appending.
func AppendLine(f *os.File, line string) error {
	_, err := f.WriteString(line + "\n")
	return err
}
