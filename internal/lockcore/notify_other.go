//go:build !linux

package lockcore

// Without change notification waiters in other processes poll.

func watchPath(path string, w *wakePoint) (stop func()) { return func() {} }

func watchPathOK(path string, w *wakePoint) (stop func(), ok bool) { return func() {}, false }

func watchExit(pid int, still func() bool, w *wakePoint) (stop func()) { return func() {} }
