package lockcore

import (
	"context"
	"time"
)

// tryCleanup bounds how long TryLock waits for a cleanup (see cleanup): a
// try does not wait out a failing filesystem.
const tryCleanup = time.Second

// cleanupCtx is what a cleanup's caller waits on: ctx, and for TryLock at
// most tryCleanup.
func (ws *waitState) cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ws.try {
		return context.WithTimeout(ctx, tryCleanup)
	}
	return context.WithCancel(ctx)
}

// cleanup runs fn as retry does (with a context of its own, for up to the
// guard's lease: a cleanup under the guard may have to wait out a guard
// left by a breaker that died on another host), waiting for it until ctx
// is done; then fn goes on in the background. Given up, a cleanup would
// leave a record naming this live process, or a guard, which blocks this
// host; but a caller out of time (ENOSPC, say: every try failed for the
// lease) must not wait for it.
func (l *Lock) cleanup(ctx context.Context, fn func(bg context.Context) error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		bg, cancel := context.WithTimeout(context.Background(), l.guardLease()+l.cfg.Grace)
		defer cancel()
		l.retry(func() error { return fn(bg) })
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
