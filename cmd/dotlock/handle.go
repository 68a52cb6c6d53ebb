package main

import (
	"context"
	"os"
	"time"

	dl "github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
	"github.com/dotlock/dotlock/stale"
)

// handle is a lock of either format: a lock directory (read/write, so that
// -s and -x interoperate), or a lock file.
type handle struct {
	path   string
	format string
	f      *lockfile.Lock
	d      *lockdir.RWLock
}

func openHandle(abs, format string, opts []dl.Option) (*handle, error) {
	h := &handle{path: abs, format: format}
	var err error
	if format == formatFile {
		h.f, err = lockfile.New(abs, opts...)
	} else {
		h.d, err = lockdir.NewRW(abs, opts...)
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// acquire takes the lock: at once or not at all if try, else waiting until
// ctx ends.
func (h *handle) acquire(ctx context.Context, shared, try bool) error {
	switch {
	case h.f != nil && try:
		return h.f.TryLock()
	case h.f != nil:
		return h.f.Lock(ctx)
	case shared && try:
		return h.d.TryRLock()
	case shared:
		return h.d.RLock(ctx)
	case try:
		return h.d.TryLock()
	}
	return h.d.Lock(ctx)
}

func (h *handle) release(shared bool) error {
	switch {
	case h.f != nil:
		return h.f.Unlock()
	case shared:
		return h.d.RUnlock()
	}
	return h.d.Unlock()
}

func (h *handle) token() uint64 {
	if h.f != nil {
		return h.f.Token()
	}
	return h.d.Token()
}

func (h *handle) lost() <-chan struct{} {
	if h.f != nil {
		return h.f.Lost()
	}
	return h.d.Lost()
}

func (h *handle) status() (lockdir.Status, error) {
	if h.f != nil {
		return h.f.Status()
	}
	return h.d.Status()
}

func (h *handle) handOver(pid int) (stale.Owner, error) {
	if h.f != nil {
		return h.f.HandOver(pid)
	}
	return h.d.HandOver(pid)
}

func (h *handle) adopt(uuid string, shared bool) (stale.Owner, error) {
	if h.f != nil {
		return h.f.Adopt(uuid)
	}
	return h.d.Adopt(uuid, shared)
}

func (h *handle) releaseFor(o stale.Owner) error {
	if h.f != nil {
		return h.f.ReleaseFor(o)
	}
	return h.d.ReleaseFor(o)
}

func (h *handle) breakLock(ctx context.Context, force bool) (lockdir.Broken, error) {
	if h.f != nil {
		return h.f.Break(ctx, force)
	}
	return h.d.Break(ctx, force)
}

// leftoverAge: an empty file at a --file lock path older than this is not a
// lock being created (the engine's grace for half-written records).
const leftoverAge = 5 * time.Second

var timeSince = time.Since

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
	done := make(chan struct{})
	got := make(chan os.Signal, 1)
	go func() {
		select {
		case s := <-sigc:
			cancel()
			got <- s
		case <-done:
			got <- nil
		}
	}()
	if !try {
		prog.begin()
	}
	err := h.acquire(ctx, shared, try)
	close(done)
	s := <-got
	prog.end()
	if s != nil {
		if err == nil {
			h.release(shared)
		}
		return s, nil
	}
	return nil, err
}
