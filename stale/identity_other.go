//go:build !linux

package stale

func bootID() (string, error) { return bootTimeID() }

func pidNamespace() string { return "" }

func lookupProc(pid int) (Process, bool, error) { return Process{}, false, nil }
