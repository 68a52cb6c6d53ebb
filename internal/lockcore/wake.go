package lockcore

import (
	"runtime"
	"sync"
	"time"
	"weak"
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

// wakePoints holds the wake point of each path that a live handle (or a
// recent release, see recentReleases) uses: every handle on a path in this
// process shares one while any of them is reachable. An entry is a weak
// pointer, removed by a cleanup once its wake point is unreachable, so that
// a process that locks many distinct paths (a job per path) keeps only the
// entries of the handles it still has.
var wakePoints = struct {
	sync.Mutex
	m map[string]weak.Pointer[wakePoint]
}{m: map[string]weak.Pointer[wakePoint]{}}

// wakeEntry names a wakePoints entry for its cleanup.
type wakeEntry struct {
	path string
	wp   weak.Pointer[wakePoint]
}

func wakePointFor(path string) *wakePoint {
	wakePoints.Lock()
	defer wakePoints.Unlock()
	if w := wakePoints.m[path].Value(); w != nil {
		return w
	}
	w := &wakePoint{ch: make(chan struct{})}
	wp := weak.Make(w)
	wakePoints.m[path] = wp
	runtime.AddCleanup(w, forgetWakePoint, wakeEntry{path, wp})
	return w
}

// forgetWakePoint removes e's entry once its wake point is unreachable,
// unless a new wake point for the path has taken its place.
func forgetWakePoint(e wakeEntry) {
	wakePoints.Lock()
	defer wakePoints.Unlock()
	if wakePoints.m[e.path] == e.wp {
		delete(wakePoints.m, e.path)
	}
}

// recentReleases keeps the wake points of the last few releases reachable,
// so that a release is remembered (see releasedWithin) for the handoff
// window even when its handle is dropped at once: a loop that makes a new
// handle for each hold still yields to waiters (W4). A fixed number, so
// that it stays bounded however many paths are released; a path released
// before the last len(ring) releases was released longer ago than any
// handoff window, unless the process releases thousands of paths a second.
var recentReleases struct {
	sync.Mutex
	ring [64]*wakePoint
	next int
}

func keepRecent(w *wakePoint) {
	recentReleases.Lock()
	recentReleases.ring[recentReleases.next] = w
	recentReleases.next = (recentReleases.next + 1) % len(recentReleases.ring)
	recentReleases.Unlock()
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
	keepRecent(w)
}

// releasedWithin reports whether this process released the path less
// than d before now, and the token of the hold it released.
func (w *wakePoint) releasedWithin(d time.Duration, now time.Time) (tok uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.releasedTk, !w.releasedAt.IsZero() && now.Sub(w.releasedAt) < d
}
