package lockdir_test

import (
	"os"

	"golang.org/x/sys/windows"
)

// rwCanStop: there is no SIGSTOP here; the tests that stop a helper skip.
const rwCanStop = false

func (p *rwProc) stop() {
	p.t.Helper()
	p.t.Fatal("stop: no SIGSTOP on this system")
}

func (p *rwProc) cont()   {}
func (p *rwProc) resume() {}

// appendLine appends line to the O_APPEND log f. Readers log at once, and
// Wine's appends from several processes can overwrite each other (it seeks
// to the end, then writes), so each append holds the file's kernel lock.
func appendLine(f *os.File, line string) error {
	h := windows.Handle(f.Fd())
	ol := new(windows.Overlapped)
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, ol); err != nil {
		return err
	}
	defer windows.UnlockFileEx(h, 0, 1, 0, ol)
	_, err := f.WriteString(line)
	return err
}
