package locktest

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// openWriteShared opens name for writing as dotlock does for its own record:
// shared for deletion, so that a breaker may move it while it is open
// (os.OpenFile would make that a sharing violation).
func openWriteShared(name string) (*os.File, error) {
	p, err := syscall.UTF16PtrFromString(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	const share = syscall.FILE_SHARE_READ | syscall.FILE_SHARE_WRITE | syscall.FILE_SHARE_DELETE
	h, err := syscall.CreateFile(p, syscall.GENERIC_WRITE, share, nil, syscall.OPEN_EXISTING, syscall.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}

// AppendLine appends line and a newline to f, opened with O_APPEND.
// Helpers log at once, and Wine's appends from several processes can
// overwrite each other (it seeks to the end, then writes), so each append
// holds the file's kernel lock.
func AppendLine(f *os.File, line string) error {
	h := windows.Handle(f.Fd())
	ol := new(windows.Overlapped)
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, ol); err != nil {
		return err
	}
	defer windows.UnlockFileEx(h, 0, 1, 0, ol)
	_, err := f.WriteString(line + "\n")
	return err
}
