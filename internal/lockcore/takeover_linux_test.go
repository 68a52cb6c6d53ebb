package lockcore

import (
	"path/filepath"
	"testing"
)

// On a network filesystem too a breaker takes over (B6): its one create
// is made under its own guard, with the victim's token + 1. The
// directory, on tmpfs (whose reads take the direct I/O used on network
// filesystems), is taken for FUSE's. (Takeovers were made on local
// filesystems only while two-host chaos on sshfs with default caches
// lost a live hold with them: a record read cut short to a cached size
// of 0, PROTOCOL.md's P5 and TestTwoHosts/CachedEmpty.)
func TestTakeoverOnNetworkFS(t *testing.T) {
	dir := shmDir(t)
	networkDirs.Store(dir, classFUSE)
	path := filepath.Join(dir, "x.lock")
	plantDeadHolder(t, path, 30)
	g := &guardAtCreates{guard: path + guardSuffix}
	l := newFileLock(t, path, WithCreateHook(g.hook))
	if err := l.TryLock(); err != nil {
		t.Fatalf("TryLock over a dead holder's lock: %v", err)
	}
	defer l.Unlock()
	if tok := l.Token(); tok != 31 {
		t.Errorf("token %d after breaking token 30's dead holder, want 31", tok)
	}
	if at := g.seen(); len(at) != 1 || !at[0] {
		t.Errorf("the breaker's creates (true: made under the guard): %v; want one, under the guard", at)
	}
}
