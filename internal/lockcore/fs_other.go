//go:build !linux && !windows

package lockcore

func networkFS(dir string) bool { return true }

func directFlag(dir string) int { return 0 }

func localFS(dir string) bool { return false }

// knownNetworkFS: not told here (no statfs kinds); reads are taken as exact.
func knownNetworkFS(string) bool { return false }

// slotFlag: reads are exact here (see fs_linux.go).
const slotFlag = 0

// No O_PATH everywhere here: directories are opened to read them, and
// calls are made by name (see fs_linux.go).
const oPath = 0

func pathOnlyDirs(dir string) bool { return false }

func dirHandles(dir string) bool { return false }

// noDeferredClose: see fs_linux.go.
func noDeferredClose(fd int, dir string) {}

// keepsHandles: records are read as on a local filesystem here (directFlag).
func keepsHandles(dir string) bool { return false }

// touchNow: W7's marks, as W6, apply only where network filesystems are
// told (knownNetworkFS).
func touchNow(string) error { return nil }
