package lockcore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/dotlock/dotlock/stale"
)

// The last-record slots. A departing record is renamed into P.last; but in
// a sticky directory (/tmp) no one may rename over another user's file, so
// a user who finds P.last another's moves on to P.last.1, P.last.2, ...:
// the first slot that is missing or its own. Each user so keeps at most one
// slot, and the next token is 1 + the highest over the chain, read up to
// its first missing slot.

// maxSlots bounds the chain: that many users (or planted files) in turn.
const maxSlots = 64

// lastSlot is the i-th last-record slot of the lock at path.
func lastSlot(path string, i int) string {
	if i == 0 {
		return path + ".last"
	}
	return path + ".last." + strconv.Itoa(i)
}

// retireTarget moves src, the record of the lock at path, to where Retire
// keeps it — the first last-record slot it may replace if keep, else a
// unique name — and returns that name. move renames src to a path (for a
// lock directory, relative to its descriptor). A rename refused onto a slot of
// another user's moves on to the next slot; one refused onto a missing
// slot, or our own, is a real failure (src is not ours to move), reported
// with whose it is. own says src is this caller's own record (a release,
// R2: R1 proved it ours). The slots are looked at through o (nil: by name).
func retireTarget(o *opDir, src string, move func(dst string) error, path string, keep, own bool) (string, error) {
	if !keep {
		dst := tempName(path)
		// A rename to a unique name that fails, yet whose target exists,
		// happened: its reply was lost (an NFS retransmission, P6). Going
		// on as if it had succeeded lets the caller's check put back what
		// it should not have moved, instead of leaving it aside.
		err := move(dst)
		if err != nil {
			if _, lerr := os.Lstat(dst); lerr == nil {
				err = nil
			}
		}
		if errors.Is(err, fs.ErrPermission) {
			err = explainForeign(src, err)
		}
		return dst, err
	}
	atomic := !localFS(filepath.Dir(path))
	for i := range maxSlots {
		dst := lastSlot(path, i)
		err := intoSlot(o, path, move, dst, atomic, own)
		if err == nil || !errors.Is(err, fs.ErrPermission) {
			return dst, err
		}
		if !foreignFile(dst) {
			return dst, explainForeign(src, err)
		}
	}
	return path + ".last", &fs.PathError{Op: "rename", Path: src, Err: fmt.Errorf("all %d last-record slots (%s.last...) belong to other users", maxSlots, filepath.Base(path))}
}

// intoSlot renames src over the slot dst. On a network filesystem, one
// rename: a lost reply (P6) must not make a put-back replace the record
// just moved in; records there are synced, so ext4 on the server has
// nothing to force out. On a local filesystem the old record is not
// renamed over — ext4 forces out the data of a file renamed over another
// (auto_da_alloc): a create, write and rename over took 82 µs, against
// 17 µs with the old record removed first. A release (own) removes it:
// its own record, still at the path, carries a higher token than the one
// removed (A3 read the chain), and a rename of one's own file that then
// fails (EIO, ENOSPC) is tried again, so no token is lost. Anyone else's
// rename may be refused (another user's record in a sticky directory), so
// a breaker moves the old record aside and puts it back if the rename
// fails; in a sticky directory moving aside fails for another user's
// slot, and the rename onto it then fails too. unlink(2) never removes a
// directory planted there, and only a file is moved aside.
func intoSlot(o *opDir, path string, move func(dst string) error, dst string, atomic, own bool) error {
	// Only a record's slot is replaced: anything else there (a user's
	// file, planted during the hold) is not dotlock's (P10). The slot A3
	// read, unchanged, is known to be one (seen_unix.go).
	record := stillRecord(dst)
	if !record {
		_, err := o.read(dst)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && errors.Is(err, ErrNotLock) {
			return err
		}
		record = err == nil
	}
	if atomic {
		return move(dst)
	}
	if own {
		syscall.Unlink(dst)
		return move(dst)
	}
	aside := tempName(path)
	moved := false
	if !record { // a record just looked at needs no second look
		st, err := os.Lstat(dst)
		record = err == nil && st.Mode().IsRegular()
	}
	if record {
		moved = rename(dst, aside) == nil
	}
	err := move(dst)
	switch {
	case !moved:
	case err != nil:
		putBack(path, aside, dst)
	default:
		os.Remove(aside)
	}
	return err
}

// putBack returns the old record moved aside to its slot dst — or, if
// another user's file took that slot meanwhile (a sticky directory), to the
// first slot it may take, so that its token stays in the chain. Should
// none take it, it stays at its P.gone name rather than be lost.
func putBack(path, aside, dst string) {
	err := rename(aside, dst)
	for i := 0; err != nil && errors.Is(err, fs.ErrPermission) && i < maxSlots; i++ {
		if slot := lastSlot(path, i); !foreignFile(slot) {
			err = rename(aside, slot)
		}
	}
}

// readSlots reads the last-record chain of the lock at path, up to its
// first missing slot. Always: the lookup of the missing slot costs about
// 0.5 µs locally (as much as a stat of the directory to see whether it is
// sticky), and a chain slot missed — in a directory made sticky, or no
// longer sticky, since it was looked at — would make tokens go backwards.
// A slot holding anything but a record (a symlink, a FIFO, a user's file:
// dotlock never makes one) is refused with an error matching ErrNotLock:
// it is neither read through nor replaced (P10). The slots are read
// through o (nil: by name).
func readSlots(o *opDir, path string) ([][]byte, error) {
	var recs [][]byte
	for i := range maxSlots {
		data, err := o.readSlot(lastSlot(path, i))
		switch {
		case errors.Is(err, syscall.ESTALE):
			// Replaced while read (NFS): a slot is there, and taking it
			// for the end of the chain could lose its token.
			return recs, err
		case errors.Is(err, fs.ErrNotExist) && i == 0:
			return recs, confirmMissing(lastSlot(path, 0))
		case errors.Is(err, fs.ErrNotExist):
			return recs, nil
		case err != nil:
			return recs, err
		default:
			recs = append(recs, data)
		}
	}
	return recs, nil
}

// errCachedMissing: a network filesystem's client said a slot does not
// exist, but the server lists it.
var errCachedMissing = errors.New("this client's cache says it does not exist, but the server lists it (another host made it): looked up again once the cache lapses")

// confirmMissing asks the server, on a network filesystem, whether the
// slot name that a lookup found missing really is. A client may answer a
// lookup from a negative entry it cached when the name was missing: the
// Linux SMB client trusts one for a second (cifs_d_revalidate), and a
// process that looked P.last up before any hold had left (a waiter, a
// status) would then, for that second, read no last record although
// another host has just made one, and start tokens again (P7). A listing
// of the directory is the server's answer. It is made only for slot 0,
// which is missing only until a lock's first hold leaves. A directory that
// may be searched but not read leaves the lookup's answer as it was; a
// listing that fails part way is an error (the attempt comes back).
func confirmMissing(name string) error {
	dir := filepath.Dir(name)
	if !knownNetworkFS(dir) {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	base := filepath.Base(name)
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			if n == base {
				return &fs.PathError{Op: "read", Path: name, Err: errCachedMissing}
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return &fs.PathError{Op: "readdir", Path: dir, Err: unwrapPath(err)}
		}
	}
}

// readLast returns the record with the highest token in the chain (or, if
// none parses, the first that does not, for the caller to judge); it fails
// with fs.ErrNotExist if there is no last record.
func readLast(o *opDir, path string) ([]byte, error) {
	recs, err := readSlots(o, path)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, &fs.PathError{Op: "read", Path: lastSlot(path, 0), Err: fs.ErrNotExist}
	}
	var best []byte
	var top uint64
	for _, r := range recs {
		if o, err := stale.Parse(r); err == nil && (best == nil || o.Token > top) {
			best, top = r, o.Token
		}
	}
	if best == nil {
		return recs[0], nil
	}
	return best, nil
}

// lastToken is the token of the last hold that left the store's path: the
// highest in its last-record chain, 0 if none ever left. A slot that exists
// but cannot be read or parsed (cut short by a stale attribute cache, say)
// is an error, never a reason to start tokens again — until what the
// unparsable slots hold has stayed the same for the grace period (ob, by
// our clock): then it is taken to be planted garbage, ignored, and
// replaced at the next release. Anything that is not a record at all (a
// symlink, a FIFO, a user's file) is an error matching ErrNotLock (P10).
func (l *Lock) lastToken(s Store, ob *stale.Observation) (uint64, error) {
	recs, err := readSlots(s.opDir(), s.Path())
	if msg, wait := l.notRecordYet(ob, err); wait {
		return 0, fmt.Errorf("last record unreadable for now (%s)", msg)
	}
	if errors.Is(err, ErrNotLock) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("last record unreadable: %w", err)
	}
	var top uint64
	var bad []byte
	var badErr error
	for i, r := range recs {
		o, err := stale.Parse(r)
		if err != nil {
			// Every record is padded to one size, so a client that knows
			// a slot's size but not its data reads the same NULs for any
			// record: the slot's file tells them apart (unnamedKey).
			bad, badErr = append(append(bad, unnamedKey(r, lastSlot(s.Path(), i))...), 0), err
			continue
		}
		top = max(top, o.Token)
	}
	if badErr == nil {
		ob.Reset()
	} else if ob.See(string(bad), l.cfg.Clock.Now()) < l.cfg.Grace {
		return 0, fmt.Errorf("last record unreadable (%v)", badErr)
	}
	return top, nil
}
