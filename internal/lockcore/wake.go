package lockcore

import (
	"sync"
	"time"
)

// wakePoint lets handles in one process wake each other's waiters on
// release, so that a waiter in the same process never sleeps through one.
// Waiters in other processes are woken by change notification where there
// is one (notify_linux.go), and poll.
type wakePoint struct {
	mu         sync.Mutex
	ch         chan struct{}
	releasedAt time.Time // when a handle in this process last released the path
	releasedTk uint64    // the token of that hold
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

// released records a release by this process, of the hold with token
// tok, at now.
func (w *wakePoint) released(now time.Time, tok uint64) {
	w.mu.Lock()
	w.releasedAt, w.releasedTk = now, tok
	w.mu.Unlock()
}

// releasedWithin reports whether this process released the path less
// than d before now, and the token of the hold it released.
func (w *wakePoint) releasedWithin(d time.Duration, now time.Time) (tok uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.releasedTk, !w.releasedAt.IsZero() && now.Sub(w.releasedAt) < d
}
