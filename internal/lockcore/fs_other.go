//go:build !linux && !windows

package lockcore

func networkFS(dir string) bool { return true }

func directFlag(dir string) int { return 0 }
