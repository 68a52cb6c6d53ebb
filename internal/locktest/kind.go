// Package locktest holds the tests that every lock package must pass, and
// the helper-process machinery they use. Packages lockfile and lockdir run
// the same suite against their own Kind, so the two cannot drift apart.
package locktest

import (
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/stale"
)

// Locker is the API both lock packages offer (dotlock.Mutex's).
type Locker interface {
	dotlock.Locker
	Owner() (stale.Owner, error)
	Path() string
}

// Kind describes one lock package to the suite.
type Kind struct {
	Name string // "lockfile" or "lockdir"
	// New is the package's New.
	New func(path string, opts ...lockcore.Option) (Locker, error)
	// RecordPath is where the owner record of the lock at path lives.
	RecordPath func(path string) string
	// Store is the engine's store of this kind, for the tools the lock
	// packages do not offer (Break, Status: the dotlock command's).
	Store func(abs string) lockcore.Store
	// Plant creates the lock entry at path with the given record content,
	// as a holder that wrote it would have left it (record may be empty).
	Plant func(path string, record []byte) error
}

// FileKind and DirKind describe the on-disk layouts of lockfile and lockdir;
// the packages fill in New.
func FileKind(newLock func(string, ...lockcore.Option) (Locker, error)) Kind {
	return Kind{
		Name:       "lockfile",
		New:        newLock,
		Store:      func(abs string) lockcore.Store { return lockcore.NewFileStore(abs) },
		RecordPath: func(p string) string { return p },
		Plant: func(p string, rec []byte) error {
			return os.WriteFile(p, rec, 0o644)
		},
	}
}

func DirKind(newLock func(string, ...lockcore.Option) (Locker, error)) Kind {
	return Kind{
		Name:       "lockdir",
		New:        newLock,
		Store:      func(abs string) lockcore.Store { return lockcore.NewDirStore(abs) },
		RecordPath: func(p string) string { return filepath.Join(p, lockcore.OwnerFile) },
		Plant: func(p string, rec []byte) error {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			if rec == nil {
				return nil
			}
			return os.WriteFile(filepath.Join(p, lockcore.OwnerFile), rec, 0o644)
		},
	}
}
