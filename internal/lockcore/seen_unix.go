//go:build unix

package lockcore

import (
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// A release replaces its last-record slot only if what is there is a
// record (P10). On a local filesystem the slot it replaces is, nearly
// always, the very file its own acquire read (A3): nothing else renames
// into a slot while a hold stands. So A3 remembers each slot it read as a
// record by its stamp, and the release's check is then one lstat, not an
// open, fstat, read and close. A stamp is the file's device, inode, size,
// and change and modification times: any write to the file changes them,
// and so does another file at the name, short of one with the same inode
// number, size and times to the nanosecond.

// fileStamp is what a file's stat says that its change would change.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func stampOf(st *unix.Stat_t) fileStamp {
	return fileStamp{uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim, st.Ctim}
}

// seenRecords maps a slot's path to the stamp of the record read there.
// Bounded: entries are taken by the release that uses them, and the map is
// emptied when it reaches maxSeen paths (a process that reads many slots
// it never replaces: waiters, readers, lost holds).
var seenRecords = struct {
	sync.Mutex
	m map[string]fileStamp
}{m: map[string]fileStamp{}}

const maxSeen = 1024

// readSlotLocal reads a slot, remembering it if it is a record on a
// filesystem where its stamp can be trusted: a local one (an attribute
// cache could vouch for a file its server has replaced; on systems where
// localFS cannot tell, none is), with times finer than a second (with
// whole seconds, as on ext4 with small inodes or FAT, a same-size rewrite
// within the second would keep the stamp).
func readSlotLocal(name string) ([]byte, error) {
	var st unix.Stat_t
	data, err := readRecordLocalStat(name, &st)
	if err == nil && (st.Mtim.Nsec != 0 || st.Ctim.Nsec != 0) && localFS(filepath.Dir(name)) {
		seenRecords.Lock()
		if len(seenRecords.m) >= maxSeen {
			clear(seenRecords.m)
		}
		seenRecords.m[name] = stampOf(&st)
		seenRecords.Unlock()
	}
	return data, err
}

// stillRecord reports whether the file at name is the one a read found
// to be a record, unchanged since (one lstat). False means "not known":
// the caller reads it.
func stillRecord(name string) bool {
	seenRecords.Lock()
	want, ok := seenRecords.m[name]
	delete(seenRecords.m, name)
	seenRecords.Unlock()
	if !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	return stampOf(&st) == want
}
