package lockcore

import (
	"io/fs"
	"path/filepath"
)

// guardFiles is how one guard section (B1 to B5) reaches the guard file:
// where dirHandles (FUSE), through one descriptor of the directory it is
// in, opened for the section, rather than by name, which looks the
// directory up again at each call: a request each to sshfs's server, six
// lookups a section where one now does, ten of a shared hold's 149
// requests (TestSharedHoldLooksUpItsDirectory). By name elsewhere, where
// that open fails (the calls by name then say why), once descriptors run
// out (a release must work with one), and once the descriptor is stale (a
// FUSE filesystem other than sshfs may name files by handle).
type guardFiles struct {
	l    *Lock
	d    *lockDir // nil: by name
	name string
}

func (l *Lock) openGuardFiles() *guardFiles {
	g := &guardFiles{l: l, name: filepath.Base(l.guard.Path())}
	if dir := filepath.Dir(l.guard.Path()); dirHandles(dir) {
		g.d, _ = openUserDir(dir)
	}
	return g
}

func (g *guardFiles) close() {
	g.d.close()
	g.d = nil
}

// byNameAfter is byNameAfter, and if so closes the descriptor: the
// section goes on by name, with one descriptor more. (What such a call
// moved it has put back: see retireAside.)
func (g *guardFiles) byNameAfter(err error) bool {
	if !byNameAfter(err) {
		return false
	}
	g.close()
	return true
}

// create creates the guard, exclusively (B1).
func (g *guardFiles) create(perm fs.FileMode) (Entry, error) {
	if g.d != nil {
		if e, err := g.d.create(g.name, perm); !g.byNameAfter(err) {
			return e, err
		}
	}
	return g.l.guard.Create(perm)
}

// read reads the guard (B1's check).
func (g *guardFiles) read() ([]byte, error) {
	if g.d != nil {
		if b, err := g.d.read(g.name); !g.byNameAfter(err) {
			return b, err
		}
	}
	return g.l.guard.Read()
}

// retire moves the guard aside and removes it if check approves (B5).
func (g *guardFiles) retire(check func([]byte) bool) (bool, error) {
	if g.d != nil {
		if ok, err := retireIn(g.d, g.l.guard.Path(), check); !g.byNameAfter(err) {
			return ok, err
		}
	}
	return retireByName(g.l.guard.Path(), false, check)
}
