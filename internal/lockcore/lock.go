package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// Lock is one handle on a lock path. It is safe for concurrent use: like a
// sync.Mutex, a goroutine calling Lock while another goroutine holds the
// handle waits.
type Lock struct {
	store Store
	guard *FileStore // the breaker guard, path + ".break"
	cfg   Config
	sync  bool
	local bool // a local filesystem: entries are recognised by inode
	exact bool // reads show what is on disk: no network client's cache between
	wake  *wakePoint
	kind  layout     // lock file or lock directory (layout.go), chosen in New
	rw    *rwSupport // a lock directory's shared-mode support (set by layoutFor; used only where dirLayout leads)

	sem chan struct{} // held while this handle holds (or is acquiring) the lock

	mu      sync.Mutex
	hold    *hold
	readers []*hold   // shared holds (lock directories only)
	tried   sightings // what TryLock and TryRLock last watched (tryState)
}

// hold is one successful acquisition.
type hold struct {
	owner    stale.Owner
	entry    Entry
	lost     chan struct{}
	lostErr  error
	beatMu   sync.Mutex  // held by a beat, and by stopHeartbeat
	timer    *time.Timer // the next beat
	stopped  bool
	lastBeat time.Time  // when the last heartbeat that proved the hold was begun
	beat     uint64     // heartbeat counter (owner stays as acquired: others read it)
	beatWS   *waitState // what the beats watched of the guard, kept from beat to beat

	// read returns the hold's record as it is on disk now: for an
	// exclusive hold the store's; a shared hold has its own record inside
	// the lock directory, record (P/r.<uuid>), which its release (R3)
	// reaches through its guard section's directory.
	read   func() ([]byte, error)
	shared bool
	record string

	id      fileID // the entry's inode, pinned while it is open
	idKnown bool   // id is set: a local filesystem, an exclusive hold
}

// newHold makes a hold of the record rec (owner o) written through e.
func (l *Lock) newHold(o stale.Owner, e Entry, now time.Time) *hold {
	return &hold{
		owner:    o,
		entry:    e,
		lost:     make(chan struct{}),
		lastBeat: now,
		read:     l.store.Read,
	}
}

// New returns a handle for the lock at path kept in store. The path must
// name an entry in an existing directory.
func New(path string, newStore func(abs string) Store, opts ...Option) (*Lock, error) {
	if path == "" {
		return nil, &fs.PathError{Op: "new", Path: path, Err: errors.New("empty lock path")}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: err}
	}
	base := filepath.Base(abs)
	if base == "." || base == ".." || base == string(filepath.Separator) || strings.HasSuffix(path, string(filepath.Separator)) {
		return nil, &fs.PathError{Op: "new", Path: path, Err: errors.New("lock path must name a file or directory entry, not end in a separator")}
	}
	dir := filepath.Dir(abs)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: fmt.Errorf("directory %s: %w", dir, unwrapPath(err))}
	}
	if !st.IsDir() {
		return nil, &fs.PathError{Op: "new", Path: path, Err: fmt.Errorf("%s is not a directory", dir)}
	}
	if err := checkNames(dir, base); err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: err}
	}
	cfg, err := configure(opts)
	if err != nil {
		return nil, &fs.PathError{Op: "new", Path: path, Err: err}
	}
	l := &Lock{
		store: newStore(abs),
		guard: NewFileStore(abs + guardSuffix),
		cfg:   cfg,
		wake:  wakePointFor(abs),
		sem:   make(chan struct{}, 1),
	}
	l.kind = layoutFor(l)
	l.local = localFS(dir)
	l.exact = !knownNetworkFS(dir)
	if cfg.Sync != nil {
		l.sync = *cfg.Sync
	} else {
		l.sync = networkFS(dir)
	}
	return l, nil
}
