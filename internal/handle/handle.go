// Package handle joins package dotlock's Mutex and RWMutex, whose methods
// users call, to the engine behind them (package lockcore). The engine
// imports dotlock for its errors, so dotlock cannot import the engine:
// dotlock sets these constructors when it is loaded (every program that
// makes a lock loads it), and lockfile and lockdir call them.
package handle

import (
	"context"

	"github.com/dotlock/dotlock/stale"
)

// Engine is what a lock handle asks of the engine: *lockcore.Lock.
type Engine interface {
	TryLock() error
	Lock(ctx context.Context) error
	Unlock() error
	Token() uint64
	Lost() <-chan struct{}
	Owner() (stale.Owner, error)
	Path() string

	TryRLock() error
	RLock(ctx context.Context) error
	RUnlock() error
	Readers() ([]stale.Owner, error)
}

// Set by package dotlock: Mutex returns a *dotlock.Mutex, RWMutex a
// *dotlock.RWMutex, on e.
var (
	Mutex   func(e Engine) any
	RWMutex func(e Engine) any
)
