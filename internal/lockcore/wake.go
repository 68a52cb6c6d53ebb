package lockcore

import "sync"

// wakePoint lets handles in one process wake each other's waiters on
// release, so that a waiter in the same process never sleeps through one.
// Waiters in other processes poll.
type wakePoint struct {
	mu sync.Mutex
	ch chan struct{}
}

var wakePoints sync.Map // absolute lock path -> *wakePoint

func wakePointFor(path string) *wakePoint {
	if w, ok := wakePoints.Load(path); ok {
		return w.(*wakePoint)
	}
	w, _ := wakePoints.LoadOrStore(path, &wakePoint{ch: make(chan struct{})})
	return w.(*wakePoint)
}

// channel returns a channel closed at the next notify. Take it before
// trying, so that a release between the try and the wait is not missed.
func (w *wakePoint) channel() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *wakePoint) notify() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}
