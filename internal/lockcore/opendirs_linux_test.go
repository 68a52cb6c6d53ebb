package lockcore

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDirectoriesOpenedPerFilesystem pins which filesystems get O_PATH
// descriptors of the protocol's directories (docs/PROTOCOL.md, Round
// trips): local ones and FUSE, where an open asks nothing a lookup does
// not; never NFS, whose revalidation at an open keeps the names cached
// inside P fresh, nor SMB. And only FUSE gets guard sections through a
// descriptor of the lock's directory (opDir). The class is set by
// hand for a directory of its own, as fsClassFor would find it.
func TestDirectoriesOpenedPerFilesystem(t *testing.T) {
	for _, c := range []struct {
		name             string
		class            fsClass
		pathOnly, handle bool
	}{
		{"local", classLocal, true, false},
		{"fuse", classFUSE, true, true},
		{"nfs", classNetwork, false, false},
		{"smb", classSMB, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			networkDirs.Store(dir, c.class)
			p := filepath.Join(dir, "x.lock")
			d := makeLockDir(t, p)
			fl, err := unix.FcntlInt(uintptr(d.fd), unix.F_GETFL, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := fl&unix.O_PATH != 0; got != c.pathOnly || d.pathOnly != c.pathOnly {
				t.Errorf("P opened O_PATH: %v (lockDir says %v); want %v", got, d.pathOnly, c.pathOnly)
			}
			if names, err := d.names(); err != nil || len(names) != 0 {
				t.Errorf("listing P: %v, %v; want it empty", names, err)
			}
			l := newFileLock(t, filepath.Join(dir, "y.lock"))
			g := openOpDir(l.guard.Path()) // a guard section's
			defer g.close()
			if d, _ := g.at(l.guard.Path()); (d != nil) != c.handle {
				t.Errorf("guard section through a descriptor of the directory: %v; want %v", d != nil, c.handle)
			}
			o := openOpDir(l.Path())
			defer o.close()
			if d, _ := o.at(l.Path()); (d != nil) != c.handle {
				t.Errorf("an attempt or release through a descriptor of the directory: %v; want %v", d != nil, c.handle)
			}
		})
	}
}
