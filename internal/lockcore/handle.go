package lockcore

import (
	"context"
	"errors"
	"io/fs"

	"github.com/dotlock/dotlock/stale"
)

// Path returns the absolute lock path.
func (l *Lock) Path() string { return l.store.Path() }

// Config returns the handle's settings.
func (l *Lock) Config() Config { return l.cfg }

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

// Token returns the fencing token of the current hold (exclusive, or else
// the newest shared one), or 0.
func (l *Lock) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.owner.Token
	}
	return 0
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Lost returns a channel that is closed when the current hold is found
// lost. When the handle holds nothing, the channel is already closed.
func (l *Lock) Lost() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.current(); h != nil {
		return h.lost
	}
	return closedChan
}

// Held returns the record of the current hold, if any.
func (l *Lock) Held() (stale.Owner, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return stale.Owner{}, false
	}
	return l.hold.owner, true
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
