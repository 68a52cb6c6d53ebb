package lockdir_test

import (
	"testing"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/locktest"
	"github.com/dotlock/dotlock/lockdir"
)

var kind = locktest.DirKind(func(path string, opts ...lockcore.Option) (locktest.Locker, error) {
	l, err := lockdir.New(path, opts...)
	if err != nil {
		return nil, err
	}
	return l, nil
})

func TestMain(m *testing.M) { locktest.Main(m, kind) }

// TestSuite is the conformance suite both lock packages pass.
func TestSuite(t *testing.T) { locktest.Run(t, kind) }

// TestProcesses is the cross-process suite: real helper processes, real SIGKILLs.
func TestProcesses(t *testing.T) { locktest.RunProcesses(t, kind) }

// TestTwoHosts is the two-host suite: helper processes on two simulated
// hosts sharing one sshfs export (skipped, saying why, without root, Linux
// or the tools).
func TestTwoHosts(t *testing.T) { locktest.RunTwoHosts(t, kind) }

// BenchmarkLockUnlock: uncontended lock+unlock beside the raw primitives.
func BenchmarkLockUnlock(b *testing.B) { locktest.Bench(b, kind) }
