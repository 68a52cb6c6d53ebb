//go:build !linux

package main

// exitNotice: no notice; the keeper looks at its holder every tick.
func exitNotice(pid int) <-chan struct{} { return nil }
