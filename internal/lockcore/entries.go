package lockcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/google/uuid"
)

// What the protocol may remove is what it makes (docs/PROTOCOL.md, "What
// dotlock removes"): a lock directory holds only the record "owner" and
// readers' records "r.<uuid>"; a network filesystem may add, for a while,
// the name it gives a removed file that is still open somewhere (NFS's
// ".nfsXXXX", FUSE's ".fuse_hiddenXXXX"). A directory holding anything else
// is not a lock, whatever else it holds, and is never removed.

// protocolName reports whether name may stand in a lock directory.
func protocolName(name string) bool {
	// A record on its way out (tempName): removed at once, but a crash or
	// a failed removal can leave it.
	if i := strings.LastIndex(name, goneInfix); i > 0 && goneID(name[i+len(goneInfix):]) {
		name = name[:i]
	}
	switch {
	case name == OwnerFile:
		return true
	case readerName(name):
		return true
	}
	return transientName(name)
}

// readerName reports whether name is a reader's record, "r.<uuid>".
func readerName(name string) bool {
	rest, ok := strings.CutPrefix(name, readerPrefix)
	return ok && isUUID(rest)
}

// transientName reports whether name is one a network filesystem gives a
// file removed while open (it goes when the file is closed).
func transientName(name string) bool {
	for _, p := range []string{".nfs", ".fuse_hidden"} {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" && strings.Trim(rest, "0123456789abcdefABCDEF") == "" {
			return true
		}
	}
	return false
}

// goneID reports whether s is the unique part tempName adds: the first 13
// characters of a UUID.
func goneID(s string) bool {
	return len(s) == goneIDLen && s[8] == '-' && isHex(s[:8]) && isHex(s[9:])
}

func isHex(s string) bool { return strings.Trim(s, "0123456789abcdef") == "" }

// isUUID reports whether s is a UUID in the form records carry.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// foreignNames are the names in a lock directory that the protocol does
// not make.
func foreignNames(names []string) []string {
	var f []string
	for _, n := range names {
		if !protocolName(n) {
			f = append(f, n)
		}
	}
	return f
}

// notLockDir is the error for a directory at a lock path that holds
// entries dotlock did not make.
func notLockDir(path string, foreign []string) error {
	shown := foreign[:min(len(foreign), 3)]
	quoted := make([]string, len(shown))
	for i, n := range shown {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	more := ""
	if len(foreign) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(foreign)-len(shown))
	}
	return &fs.PathError{Op: "lock", Path: path, Err: ErrNotRecord{Msg: fmt.Sprintf(
		"is a directory holding entries dotlock did not make (%s%s): not a lock directory; dotlock leaves it alone: use another lock path",
		strings.Join(quoted, ", "), more)}}
}

// notOurs turns a read of a hold's record that found something dotlock
// did not make there into a lost hold: whatever it is, it is not ours.
func notOurs(err error) error {
	if errors.Is(err, ErrNotLock) {
		return &LostError{Reason: "the lock path now holds something else (" + err.Error() + ")"}
	}
	return err
}

// readIn reads the record file name inside the protocol's directory dir
// (a lock directory, or the queue), never through a symlink at dir. dir is
// opened through o (nil: by name).
func readIn(o *opDir, dir, name string) ([]byte, error) {
	b, err := readInDir(o, dir, name)
	if byNameInstead(err, dir) {
		return readRecord(dir + string(os.PathSeparator) + name)
	}
	return b, err
}

func readInDir(o *opDir, dir, name string) ([]byte, error) {
	d, err := o.openLockDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.close()
	return d.read(name)
}

// listIn lists the protocol's directory dir, never through a symlink,
// opened through o (nil: by name).
func listIn(o *opDir, dir string) ([]string, error) {
	d, err := o.openLockDirToList(dir)
	if err != nil {
		return nil, err
	}
	defer d.close()
	return d.names()
}

// emptyFile reports whether name is an empty regular file, as P.want is.
func emptyFile(name string) bool {
	st, err := os.Lstat(name)
	return err == nil && st.Mode().IsRegular() && st.Size() == 0
}

// byNameInstead reports whether opening the protocol's directory dir
// failed for want of descriptors, and dir is a directory (no symlink): then
// what was to be done through its descriptor is done by name, which needs
// one descriptor less — a release must still work out of descriptors.
func byNameInstead(err error, dir string) bool {
	if !errors.Is(err, errNoDescriptors) {
		return false
	}
	st, lerr := os.Lstat(dir)
	return lerr == nil && st.IsDir()
}
