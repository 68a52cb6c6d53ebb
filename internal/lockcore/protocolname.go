package lockcore

import "strings"

// ProtocolName reports whether name may stand in a lock directory: the
// command tells a lock directory from a user's directory by it.
func ProtocolName(name string) bool { return protocolName(name) }

// SiblingName reports whether name is one the protocol makes in the
// directory of a lock whose last element is base: the lock itself, its
// last-record slots (P.last, P.last.N), its guard, its want file, its
// queue, any of these on its way out (….gone.<id>), or a name a network
// filesystem gives a removed file that is still open. Package semaphore
// tells its own directory's entries by it.
func SiblingName(base, name string) bool {
	if i := strings.LastIndex(name, goneInfix); i > 0 && goneID(name[i+len(goneInfix):]) {
		name = name[:i]
	}
	rest, ok := strings.CutPrefix(name, base)
	if !ok {
		return transientName(name)
	}
	switch rest {
	case "", ".last", guardSuffix, wantSuffix, ".queue":
		return true
	}
	n, ok := strings.CutPrefix(rest, ".last.")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}
