package lockcore

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"
)

// Names the protocol derives from a lock path P, and the limits that
// protect them: a name too long for the filesystem made the guard fail
// ("open P.break: file name too long") after the entry was created, and
// left the entry behind.

// goneForm is as long as what tempName adds: ".gone." and 13 characters.
const goneForm = ".gone.XXXXXXXXXXXXX"

// derivedNames are the names, one path element each, that the protocol may
// make for a lock whose last element is base: the lock's siblings, and the
// names inside a lock directory and its queue (fixed lengths).
func derivedNames(base string) []string {
	gone, uuid := goneForm, strings.Repeat("u", 36)
	return []string{
		base, base + ".last", base + guardSuffix, base + wantSuffix, base + ".queue",
		base + gone, base + guardSuffix + gone, // tempName of P, of P.break
		readerPrefix + uuid + gone,                              // a reader's record on its way out
		fmt.Sprintf("%020d.w.%s", uint64(math.MaxUint64), uuid), // a queue record
	}
}

// checkNames fails, wrapping ENAMETOOLONG, if a name derived from base
// does not fit the limit of the filesystem holding dir (nameMax).
func checkNames(dir, base string) error {
	limit := nameMax(dir)
	longest := ""
	for _, n := range derivedNames(base) {
		if len(n) > len(longest) {
			longest = n
		}
	}
	if len(longest) <= limit {
		return nil
	}
	extra := len(longest) - len(base)
	if rest, ok := strings.CutPrefix(longest, base); ok {
		longest = "NAME" + rest
	}
	return fmt.Errorf("lock name of %d bytes too long: the longest name derived from it, %s, has %d bytes, over this filesystem's limit of %d; lock names may have at most %d bytes: %w",
		len(base), longest, len(base)+extra, limit, max(limit-extra, 0), syscall.ENAMETOOLONG)
}

// errTokenMax: P7 issues each hold a token greater than the last one, and
// tokens never wrap (0 means "no hold").
var errTokenMax = errors.New("the last record's fencing token is at its maximum (2^64-1): no greater one can be issued; " +
	"remove the last-record file (the lock path + \".last\") by hand to restart tokens at 1 — which restarts fencing too: " +
	"storage that checks tokens must forget the old ones")

// nextToken is the first of n tokens issued after last (A3, S1, S4), or
// errTokenMax if they would not all fit.
func nextToken(last, n uint64) (uint64, error) {
	if n = max(n, 1); last > math.MaxUint64-n {
		return 0, errTokenMax
	}
	return last + 1, nil
}
