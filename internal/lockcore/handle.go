package lockcore

import (
	"context"
	"errors"
	"io/fs"

	"github.com/dotlock/dotlock/stale"
)

// Path returns the absolute lock path.
func (l *Lock) Path() string { return l.store.Path() }

func (l *Lock) pathErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == l.store.Path() {
		return err
	}
	return &fs.PathError{Op: op, Path: l.store.Path(), Err: err}
}

func (l *Lock) ctxOr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	return l.pathErr(op, err)
}

func (l *Lock) heldOwner() []stale.Owner {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return nil
	}
	return []stale.Owner{l.hold.owner}
}

// current is the exclusive hold, or else the newest shared hold, or nil.
// Called with l.mu held.
func (l *Lock) current() *hold {
	if l.hold != nil {
		return l.hold
	}
	if n := len(l.readers); n > 0 {
		return l.readers[n-1]
	}
	return nil
}

// Token returns the fencing token of the current hold, or 0 if there is
// none. The current hold is the exclusive one, or else the newest shared
// hold still held (the one with the greatest token; RUnlock releases it
// first, so after RLock, RLock, RUnlock it is the first RLock's).
func (l *Lock) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.owner.Token
	}
	return 0
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Lost returns a channel that is closed when the current hold (as for
// Token) is found lost, at a heartbeat. When the handle holds nothing —
// before its first hold, and after its last release — the channel is
// already closed: with no hold there is nothing to keep, and a worker that
// checks Lost before it acts on what the lock protects stops, rather than
// going on unprotected. A hold's channel is closed only if that hold is
// lost, not by Unlock: a goroutine waiting on it must also stop when its
// work is done.
func (l *Lock) Lost() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.lost
	}
	return closedChan
}

// Owner returns the record of whoever holds the path now. With no holder
// it fails with an error matching fs.ErrNotExist; with a record that
// cannot be read, one wrapping *stale.RecordError.
func (l *Lock) Owner() (stale.Owner, error) {
	data, err := l.store.Read()
	if err != nil {
		return stale.Owner{}, l.pathErr("owner", err)
	}
	o, err := stale.Parse(data)
	if err != nil {
		return o, l.pathErr("owner", err)
	}
	return o, nil
}

// Judge returns the checker's verdict on the record at the path now.
func (l *Lock) Judge(o stale.Owner) stale.Judgement { return l.cfg.Checker.Judge(o) }
