package lockcore

// Watcher wakes a waiter on several lock paths at once (package
// semaphore's slots) when one of them is created, removed or renamed by
// any process on this host, where the system has change notification
// (Linux: inotify). Elsewhere, and for changes made on other hosts, its
// user polls.
type Watcher struct {
	w     *wakePoint
	stops []func()
}

// WatchPaths starts watching paths; Stop ends it.
func WatchPaths(paths []string) *Watcher {
	w := &Watcher{w: &wakePoint{ch: make(chan struct{})}}
	for _, p := range paths {
		w.stops = append(w.stops, watchPath(p, w.w))
	}
	return w
}

// C returns a channel closed at the next change. Take it before looking,
// so that a change between the look and the wait is not missed.
func (w *Watcher) C() <-chan struct{} { return w.w.channel() }

// Stop ends the watch.
func (w *Watcher) Stop() {
	for _, stop := range w.stops {
		stop()
	}
}
