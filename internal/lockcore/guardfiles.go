package lockcore

import (
	"errors"
	"io/fs"
	"path/filepath"
)

// guardFiles is how one guard section (B1 to B5) reaches the guard file:
// where dirHandles (FUSE), through one descriptor of the directory it is
// in, opened for the section, rather than by name, which looks the
// directory up again at each call: a request each to sshfs's server, five
// per section, ten of a shared hold's 149 requests
// (TestSharedHoldLooksUpItsDirectory). By name elsewhere, where that open
// fails (the calls by name then say why), and once descriptors run out: a
// release must work with one.
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

// create creates the guard, exclusively (B1).
func (g *guardFiles) create(perm fs.FileMode) (Entry, error) {
	if g.d != nil {
		e, err := g.d.create(g.name, perm)
		if !errors.Is(err, errNoDescriptors) {
			return e, err
		}
		g.close() // the section goes on by name, with one descriptor less
	}
	return g.l.guard.Create(perm)
}

// read reads the guard (B1's check).
func (g *guardFiles) read() ([]byte, error) {
	if g.d != nil {
		return g.d.read(g.name)
	}
	return g.l.guard.Read()
}

// retire moves the guard aside and removes it if check approves (B5).
func (g *guardFiles) retire(check func([]byte) bool) (bool, error) {
	if g.d != nil {
		ok, err := retireIn(g.d, g.l.guard.Path(), check)
		if !errors.Is(err, errNoDescriptors) {
			return ok, err
		}
		g.close() // put back: see retireAside
	}
	return retireByName(g.l.guard.Path(), false, check)
}
