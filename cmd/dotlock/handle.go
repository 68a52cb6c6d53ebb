package main

import (
	"context"
	"os"
	"time"

	dl "github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/semaphore"
	"github.com/dotlock/dotlock/stale"
)

// handle is a lock of either format: a lock directory (read/write, so that
// -s and -x interoperate), or a lock file. The command uses the engine
// itself: the tools it offers (status, break, lock --pid's hand-over) are
// not part of the lock packages' API.
type handle struct {
	path   string
	format string
	c      *lockcore.Lock

	sem  *semaphore.Semaphore // --slots: a semaphore, not a lock (c is nil)
	slot *semaphore.Slot
}

// openSemaphore is a handle on the semaphore of n slots in dir.
func openSemaphore(dir string, n int, opts []dl.Option) (*handle, error) {
	s, err := semaphore.New(dir, n, opts...)
	if err != nil {
		return nil, err
	}
	return &handle{path: dir, format: formatSlots, sem: s}, nil
}

func openHandle(abs, format string, opts []dl.Option) (*handle, error) {
	store := func(abs string) lockcore.Store { return lockcore.NewDirStore(abs) }
	if format == formatFile {
		store = func(abs string) lockcore.Store { return lockcore.NewFileStore(abs) }
	}
	c, err := lockcore.New(abs, store, opts...)
	if err != nil {
		return nil, err
	}
	return &handle{path: abs, format: format, c: c}, nil
}

// acquire takes the lock: at once or not at all if try, else waiting until
// ctx ends.
func (h *handle) acquire(ctx context.Context, shared, try bool) (err error) {
	switch {
	case h.sem != nil && try:
		h.slot, err = h.sem.TryAcquire()
		return err
	case h.sem != nil:
		h.slot, err = h.sem.Acquire(ctx)
		return err
	case shared && try:
		return h.c.TryRLock()
	case shared:
		return h.c.RLock(ctx)
	case try:
		return h.c.TryLock()
	}
	return h.c.Lock(ctx)
}

func (h *handle) release(shared bool) error {
	if h.sem != nil {
		return h.slot.Release()
	}
	if shared {
		return h.c.RUnlock()
	}
	return h.c.Unlock()
}

func (h *handle) token() uint64 {
	if h.sem != nil {
		return h.slot.Token()
	}
	return h.c.Token()
}

func (h *handle) lost() <-chan struct{} {
	if h.sem != nil {
		return h.slot.Lost()
	}
	return h.c.Lost()
}

func (h *handle) status() (lockcore.Status, error) { return h.c.Status() }

func (h *handle) handOver(pid int) (stale.Owner, error) { return h.c.HandOver(pid) }

func (h *handle) adopt(uuid string, shared bool) (stale.Owner, error) {
	return h.c.Adopt(uuid, shared && h.format != formatFile)
}

func (h *handle) releaseFor(o stale.Owner) error { return h.c.ReleaseFor(o) }

// beat heartbeats the handle's hold now (a handle without a timer).
func (h *handle) beat() { h.c.Beat() }

// drop forgets what the handle holds, leaving the lock as it is.
func (h *handle) drop() { h.c.Drop() }

func (h *handle) breakLock(ctx context.Context, force bool) (lockcore.Broken, error) {
	return h.c.Break(ctx, force)
}

// lockOptions are the handle's options from the command line.
func lockOptions(staleAfter time.Duration, prog *progress) []dl.Option {
	var opts []dl.Option
	if staleAfter > 0 {
		opts = append(opts, dl.WithStaleAfter(staleAfter))
	}
	if prog != nil {
		opts = append(opts, dl.WithOnWait(prog.onWait), dl.WithOnBreak(prog.onBreak))
	}
	return opts
}

// acquireOrSignal takes the lock (try: at once or not at all; timeout > 0:
// giving up then), unless one of the signals in sigc arrives first: then it
// returns that signal (releasing the lock if it was had meanwhile).
func acquireOrSignal(h *handle, shared, try bool, timeout time.Duration, sigc <-chan os.Signal, prog *progress) (os.Signal, error) {
	ctx, cancel := context.WithCancel(context.Background())
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	}
	defer cancel()
	var s os.Signal
	var err error
	if try {
		// Not a wait: a signal that comes meanwhile is seen right after
		// (no goroutine to watch for it, and no switch to and from one).
		err = h.acquire(ctx, shared, true)
		select {
		case s = <-sigc:
		default:
		}
	} else {
		done := make(chan struct{})
		got := make(chan os.Signal, 1)
		go func() {
			select {
			case sig := <-sigc:
				cancel()
				got <- sig
			case <-done:
				got <- nil
			}
		}()
		prog.begin()
		err = h.acquire(ctx, shared, false)
		close(done)
		s = <-got
		prog.end()
	}
	if s != nil {
		if err == nil {
			h.release(shared)
		}
		return s, nil
	}
	return nil, err
}
