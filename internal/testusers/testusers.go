// Package testusers lets tests act as several real users: it makes the
// users and a shared group (as root, with useradd), directories with a
// given mode under /tmp, runs commands as a user with a given umask, builds
// the dotlock binary once per test process, and lowers the kernel's
// fs.protected_* link and file protections for a test. Tests that need it
// are skipped, with the reason, where it cannot work (not Linux, not root).
package testusers

import (
	"testing"
)

// Names of the users and the group the tests share. Users are made with
// useradd -M -r -s /usr/sbin/nologin (no home, no login): idempotent, so
// parallel test processes and repeated runs find them made.
const (
	Alice = "dotlock-alice"
	Bob   = "dotlock-bob"
	Group = "dotlock-team" // both users are in it
)

// User is a user to run commands as.
type User struct {
	Name     string
	UID, GID uint32   // GID: the user's primary group
	Groups   []uint32 // supplementary groups (the shared group)
}

// Two returns alice and bob, making them (and the shared group) if need be.
// It skips t where that cannot be done.
func Two(t testing.TB) (alice, bob User) {
	t.Helper()
	return ensure(t, Alice), ensure(t, Bob)
}
