package lockcore

import (
	"io/fs"
)

// guardFiles is how one guard section (B1 to B5) reaches the guard file:
// through the directory it is in, opened for the section (an opDir: on
// FUSE), rather than by name, which looks the directory up again at each
// call: six lookups a section where one now does, ten of a shared hold's
// 149 requests on sshfs (TestSharedHoldLooksUpItsDirectory). The
// section's fn may make its own calls beside the lock through the same
// directory (withGuardIn).
type guardFiles struct {
	l *Lock
	o *opDir // nil: by name
}

func (l *Lock) openGuardFiles() *guardFiles {
	return &guardFiles{l: l, o: openOpDir(l.guard.Path())}
}

func (g *guardFiles) close() { g.o.close() }

// create creates the guard, exclusively (B1).
func (g *guardFiles) create(perm fs.FileMode) (Entry, error) {
	return g.o.create(g.l.guard.Path(), perm)
}

// read reads the guard (B1's check).
func (g *guardFiles) read() ([]byte, error) { return g.o.read(g.l.guard.Path()) }

// retire moves the guard aside and removes it if check approves (B5).
func (g *guardFiles) retire(check func([]byte) bool) (bool, error) {
	return retireAsideIn(g.o, g.l.guard.Path(), check)
}
