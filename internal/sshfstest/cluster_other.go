//go:build !linux

package sshfstest

import (
	"runtime"
	"testing"
)

type clusterState struct{}

func start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	t.Skipf("sshfstest: simulating two hosts needs Linux namespaces, FUSE and sshfs; GOOS is %s", runtime.GOOS)
	return nil
}
