//go:build !linux

package main

import "syscall"

// commandAttr: no parent-death signal outside Linux; a command whose dotlock
// was killed runs on, unprotected.
func commandAttr() *syscall.SysProcAttr { return nil }
