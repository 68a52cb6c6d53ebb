package locktest

import (
	"os"
	"testing"
)

// Main is the TestMain of a lock package's tests: when the test binary is
// re-executed as a helper process it runs the helper's role and exits;
// otherwise it runs the tests.
func Main(m *testing.M, k Kind) {
	os.Exit(m.Run())
}

// RunProcesses runs the cross-process suite (real helper processes, real
// SIGKILLs) against k.
func RunProcesses(t *testing.T, k Kind) {
	t.Skip("TODO: process suite not written yet")
}
