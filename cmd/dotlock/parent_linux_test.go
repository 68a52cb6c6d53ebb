package main

import (
	"os"
	"testing"
)

// parentOf reads the parent from /proc/PID/stat, whose command field may
// hold spaces and parentheses (the test binary's name does not, but the
// parse takes the last ')').
func TestParentOf(t *testing.T) {
	if pp, ok := parentOf(os.Getpid()); !ok || pp != os.Getppid() {
		t.Errorf("parentOf(self) = %d, %t; want %d, true", pp, ok, os.Getppid())
	}
	if _, ok := parentOf(1 << 30); ok {
		t.Errorf("parentOf(a PID above pid_max) reports a parent")
	}
}
