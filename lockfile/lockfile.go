package lockfile

import (
	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/handle"
	"github.com/dotlock/dotlock/internal/lockcore"
)

// New returns a handle on the lock file at path, in an existing directory.
// It takes nothing; call Lock or TryLock.
func New(path string, opts ...dotlock.Option) (*dotlock.Mutex, error) {
	c, err := lockcore.New(path, func(abs string) lockcore.Store { return lockcore.NewFileStore(abs) }, opts...)
	if err != nil {
		return nil, err
	}
	return handle.Mutex(c).(*dotlock.Mutex), nil
}
