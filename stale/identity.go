package stale

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

var (
	localOnce sync.Once
	localID   Identity
	localErr  error
)

// LocalIdentity returns this host's identity (computed once per process).
func LocalIdentity() (Identity, error) {
	localOnce.Do(func() {
		var id Identity
		id.Host, localErr = os.Hostname()
		if localErr != nil {
			localErr = fmt.Errorf("stale: host name: %w", localErr)
			return
		}
		if id.BootID, localErr = bootID(); localErr != nil {
			localErr = fmt.Errorf("stale: boot ID: %w", localErr)
			return
		}
		id.PIDNS = pidNamespace()
		localID = id
	})
	return localID, localErr
}

// Self returns a record naming the calling process as holder of a new hold,
// with a fresh UUID, the given token and mode, and now as acquisition time.
func Self(token uint64, mode string, now time.Time) (Owner, error) {
	id, err := LocalIdentity()
	if err != nil {
		return Owner{}, err
	}
	me, pid, err := selfProcess()
	if err != nil {
		return Owner{}, err
	}
	return Owner{
		Version:  FormatVersion,
		UUID:     uuid.NewString(),
		Token:    token,
		Mode:     mode,
		PID:      pid,
		Host:     id.Host,
		BootID:   id.BootID,
		PIDNS:    id.PIDNS,
		StartID:  me.StartID,
		Started:  me.Started,
		Acquired: now,
		BeatTime: now,
	}, nil
}

var (
	selfOnce sync.Once
	selfPID  int
	selfProc Process
	selfErr  error
)

// selfProcess is this process, looked up once: a Go program does not fork
// without exec, so neither its PID nor its start time changes.
func selfProcess() (Process, int, error) {
	selfOnce.Do(func() {
		selfPID = os.Getpid()
		selfProc, selfErr = SystemProcesses{}.Lookup(selfPID)
		if selfErr == nil && !selfProc.Exists {
			selfErr = fmt.Errorf("stale: cannot find own process %d", selfPID)
		}
	})
	return selfProc, selfPID, selfErr
}

// bootTimeIDOf is the boot ID that stands in for one where the OS has
// none, made of the boot time bt (Unix seconds): rounded down to a minute,
// it stays the same while the clock is corrected.
func bootTimeIDOf(bt uint64) string {
	return "boottime:" + strconv.FormatUint(bt/60*60, 10)
}
