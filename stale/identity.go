package stale

import (
	"fmt"
	"os"
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
	me, err := selfProcess()
	if err != nil {
		return Owner{}, err
	}
	return Owner{
		Version:  FormatVersion,
		UUID:     uuid.NewString(),
		Token:    token,
		Mode:     mode,
		PID:      os.Getpid(),
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
	selfProc Process
	selfErr  error
)

func selfProcess() (Process, error) {
	selfOnce.Do(func() {
		selfProc, selfErr = SystemProcesses{}.Lookup(os.Getpid())
		if selfErr == nil && !selfProc.Exists {
			selfErr = fmt.Errorf("stale: cannot find own process %d", os.Getpid())
		}
	})
	return selfProc, selfErr
}
