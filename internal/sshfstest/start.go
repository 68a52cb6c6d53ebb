package sshfstest

import "testing"

// Start starts a two-host cluster for the duration of the test t: a private
// sshd on a free port of 127.0.0.1 with throwaway keys, an export directory
// mounted twice with sshfs (MountA, MountB), and the namespaces of host B.
// It returns once both mounts are live and host B is ready (typically well
// under a second).
//
// Start skips the test, saying why, when not running on Linux, not running
// as root, or when a required program (sshd, ssh, ssh-keygen, sshfs,
// fusermount3 or fusermount, unshare, nsenter, mount, sh, sleep) or
// /dev/fuse is missing; on Debian, .ci/setup-sshfs installs everything.
// Any other problem fails the test.
//
// Everything is torn down by t.Cleanup, also when the test fails or panics:
// host B's namespaces are destroyed (which kills every process still running
// on host B), both mounts are lazily unmounted, sshfs and sshd are killed by
// process group, and the temporary directory (export included) is removed.
// Processes started with CommandA or CommandBootID are the test's to stop;
// once the mounts are gone they get ENOTCONN or ENOENT from them.
func Start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	return start(t, opt)
}
