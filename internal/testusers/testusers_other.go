//go:build !linux

package testusers

import (
	"context"
	"io/fs"
	"os/exec"
	"testing"
)

func ensure(t testing.TB, _ string) User {
	t.Skip("multi-user tests run on Linux only (useradd, setuid helpers)")
	return User{}
}

// Dir is Linux-only; see testusers_linux.go.
func Dir(t testing.TB, _ fs.FileMode, _ string) string {
	t.Skip("multi-user tests run on Linux only")
	return ""
}

// Command is Linux-only; see testusers_linux.go.
func Command(ctx context.Context, u User, umask int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// Unprotect is Linux-only; see testusers_linux.go.
func Unprotect(t testing.TB) { t.Skip("fs.protected_* are Linux sysctls") }

// Binary is Linux-only; see testusers_linux.go.
func Binary(t testing.TB) string { t.Skip("multi-user tests run on Linux only"); return "" }

// Exe is Linux-only; see testusers_linux.go.
func Exe(t testing.TB) string { t.Skip("multi-user tests run on Linux only"); return "" }
