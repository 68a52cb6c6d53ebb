// Package testdir gives tests a temporary directory that is removed, and
// checked to be removable, when the test ends: t.TempDir, except under
// Wine, whose os.RemoveAll fails on a non-empty directory.
package testdir

import "testing"

// New returns a new empty directory for t, removed when t ends; the test
// fails if it cannot be (on Windows: a handle left open in it).
func New(t testing.TB) string {
	t.Helper()
	return newDir(t)
}
