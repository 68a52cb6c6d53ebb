package lockdir

import (
	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/handle"
	"github.com/dotlock/dotlock/internal/lockcore"
)

// New returns a handle on the lock directory at path, in an existing
// directory. It takes nothing; call Lock, TryLock, RLock or TryRLock.
func New(path string, opts ...dotlock.Option) (*dotlock.RWMutex, error) {
	c, err := lockcore.New(path, func(abs string) lockcore.Store { return lockcore.NewDirStore(abs) }, opts...)
	if err != nil {
		return nil, err
	}
	return handle.RWMutex(c).(*dotlock.RWMutex), nil
}
