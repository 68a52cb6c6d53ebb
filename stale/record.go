package stale

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatVersion is the version of the owner record this package writes.
const FormatVersion = 1

// PaddedSize is the size of every record this package writes (unless its
// fields alone are longer): see Marshal.
const PaddedSize = 1024

// MaxRecordSize bounds every read of a record. Records are a few hundred
// bytes; anything larger is corrupt, or planted.
const MaxRecordSize = 4096

const (
	magic      = "dotlock owner record v"
	timeLayout = "2006-01-02T15:04:05.000000000Z" // fixed width: heartbeats rewrite in place
	beatDigits = 20
)

// Modes of a hold, recorded in Owner.Mode.
const (
	ModeExclusive = "exclusive"
	ModeShared    = "shared"
	ModeBreaker   = "breaker" // holder of the short guard taken while breaking a stale lock
)

// Owner is the content of an owner record.
type Owner struct {
	Version  int       // format version the record was written in
	UUID     string    // unique to this hold
	Token    uint64    // fencing token: greater than every earlier hold's for this path
	Mode     string    // ModeExclusive, ModeShared or ModeBreaker
	PID      int       // holder's process ID, in its own PID namespace
	Host     string    // holder's host name
	BootID   string    // holder's boot ID (Linux) or "boottime:<unix seconds>" elsewhere
	PIDNS    string    // holder's PID namespace (Linux, "pid:[inode]"), empty elsewhere
	StartID  string    // holder process's start, exact and stable (Linux: start time in clock ticks after boot)
	Started  time.Time // holder process's start time, for people
	Acquired time.Time // when the hold began, by the holder's clock (for people, never compared)
	Beat     uint64    // heartbeat counter; changes while the holder lives
	BeatTime time.Time // when the heartbeat was last written, by the holder's clock (for people)
}

// RecordError reports a record that cannot be parsed: empty, partial,
// corrupt, too large, or of an unknown format.
type RecordError struct {
	Reason string
	Size   int // bytes seen (MaxRecordSize+1 when too large)
}

// Error says what is wrong with the record.
func (e *RecordError) Error() string {
	return "owner record: " + e.Reason
}

// Marshal encodes o as an owner record. The token and heartbeat lines have
// fixed widths, so that they can be rewritten in place.
func (o Owner) Marshal() []byte { return o.appendRecord(make([]byte, 0, PaddedSize)) }

// appendRecord appends o's record to b.
func (o Owner) appendRecord(b []byte) []byte {
	b = append(b, magic...)
	b = strconv.AppendInt(b, FormatVersion, 10)
	b = appendField(b, "\nuuid: ", clean(o.UUID))
	b = append(b, '\n')
	b = o.appendToken(b)
	b = appendField(b, "mode: ", clean(o.Mode))
	b = append(b, "\npid: "...)
	b = strconv.AppendInt(b, int64(o.PID), 10)
	b = appendField(b, "\nhost: ", clean(o.Host))
	b = appendField(b, "\nboot: ", clean(o.BootID))
	b = appendField(b, "\npidns: ", clean(o.PIDNS))
	b = appendField(b, "\nstartid: ", clean(o.StartID))
	b = appendField(b, "\nstarted: ", formatTime(o.Started))
	b = appendField(b, "\nacquired: ", formatTime(o.Acquired))
	b = append(b, '\n')
	// Pad to a fixed size: a client whose attribute cache still holds the
	// size of the record a path held before (sshfs by default, NFS within
	// acregmax) reads no more than that size, and would see a new, longer
	// record cut short.
	if n := PaddedSize - len(b) - len("pad: \n") - beatLineLen - len("end\n"); n > 0 {
		b = append(b, "pad: "...)
		for range n {
			b = append(b, ' ')
		}
		b = append(b, '\n')
	}
	b = o.appendHeartbeat(b)
	return append(b, "end\n"...)
}

func appendField(b []byte, key, val string) []byte { return append(append(b, key...), val...) }

// appendPadded appends n in beatDigits digits.
func appendPadded(b []byte, n uint64) []byte {
	var d [beatDigits]byte
	for i := beatDigits - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:]...)
}

func (o Owner) appendToken(b []byte) []byte {
	return append(appendPadded(append(b, "token: "...), o.Token), '\n')
}

func (o Owner) appendHeartbeat(b []byte) []byte {
	b = appendPadded(append(b, "heartbeat: "...), o.Beat)
	b = append(b, ' ')
	b = representable(o.BeatTime).AppendFormat(b, timeLayout)
	return append(b, '\n')
}

// TokenLine is the token line for o's Token. Like the heartbeat line it has
// a fixed width (20 digits), so that a record's token can be advanced in
// place, at TokenOffset.
func (o Owner) TokenLine() []byte { return o.appendToken(nil) }

// TokenOffset is the offset of the token line in o.Marshal().
func (o Owner) TokenOffset() int64 {
	return int64(len(magic) + 2 + len("uuid: \n") + len(clean(o.UUID)))
}

// HeartbeatOffset is the offset of the heartbeat line in o.Marshal().
func (o Owner) HeartbeatOffset() int64 {
	var buf [PaddedSize]byte // on the stack: only the length is wanted
	return int64(len(o.appendRecord(buf[:0])) - beatLineLen - len("end\n"))
}

// beatLineLen is the fixed length of the heartbeat line.
var beatLineLen = len(Owner{}.heartbeatLine())

// HeartbeatLine is the heartbeat line for o's Beat and BeatTime: writing it
// at HeartbeatOffset turns a record for the previous beat into o's record.
// Its length never changes, so a reader racing the write sees a whole record.
func (o Owner) HeartbeatLine() []byte { return o.heartbeatLine() }

func (o Owner) heartbeatLine() []byte {
	// Fixed width whatever BeatTime is: a zero time is written in full (not
	// as "-"), so that a record begun with a zero clock reading can still
	// beat in place.
	return o.appendHeartbeat(make([]byte, 0, 64))
}

// LooksLikeRecord reports whether data may be an owner record, whole or
// on its way to being one: empty (created, not yet written), a prefix of a
// record's first line, or text that starts with that line, within
// MaxRecordSize; or only NUL bytes (a record whose size a network
// filesystem's client knows but whose data it has not got: sshfs with its
// caches, NFS after a host crash). Anything else was not written by
// dotlock: a lock never removes it (a user's file at a lock path is not a
// stale lock).
func LooksLikeRecord(data []byte) bool {
	if len(data) > MaxRecordSize {
		return false
	}
	// All NUL bytes: a record whose size a network filesystem's client
	// knows but whose data it has not got (sshfs with its caches, NFS
	// after a host crash): being written, as an empty one.
	if len(bytes.Trim(data, "\x00")) == 0 {
		return true
	}
	if len(data) <= len(magic) {
		return bytes.HasPrefix([]byte(magic), data)
	}
	return bytes.HasPrefix(data, []byte(magic))
}

// Parse decodes an owner record. Unknown keys are ignored, so that newer
// writers can add fields; the fields that liveness depends on are required.
func Parse(data []byte) (Owner, error) {
	var o Owner
	if len(data) == 0 {
		return o, &RecordError{Reason: "empty (being written, or abandoned while being written)"}
	}
	if len(data) > MaxRecordSize {
		return o, &RecordError{Reason: fmt.Sprintf("larger than %d bytes", MaxRecordSize), Size: len(data)}
	}
	s := string(data)
	first, rest, ok := strings.Cut(s, "\n")
	if !ok || !strings.HasPrefix(first, magic) {
		return o, &RecordError{Reason: "not a dotlock owner record", Size: len(data)}
	}
	v, err := strconv.Atoi(first[len(magic):])
	if err != nil || v < 1 {
		return o, &RecordError{Reason: fmt.Sprintf("bad format version %q", first[len(magic):]), Size: len(data)}
	}
	o.Version = v
	var seen seenKeys
	complete := false
	for rest != "" {
		var line string
		line, rest, ok = strings.Cut(rest, "\n")
		if !ok {
			return o, &RecordError{Reason: "partial (no final newline)", Size: len(data)}
		}
		if line == "end" {
			complete = true
			break
		}
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			if strings.HasSuffix(line, ":") { // empty value
				k, val = strings.TrimSuffix(line, ":"), ""
			} else {
				return o, &RecordError{Reason: fmt.Sprintf("malformed line %q", trunc(line)), Size: len(data)}
			}
		}
		if seen.has(k) {
			return o, &RecordError{Reason: fmt.Sprintf("duplicate key %q", trunc(k)), Size: len(data)}
		}
		seen.add(k)
		if err := o.set(k, val); err != nil {
			return o, &RecordError{Reason: fmt.Sprintf("bad %s: %v", k, err), Size: len(data)}
		}
	}
	if !complete {
		return o, &RecordError{Reason: "partial (no end line)", Size: len(data)}
	}
	if rest != "" {
		return o, &RecordError{Reason: "data after end line", Size: len(data)}
	}
	for _, k := range []string{"uuid", "token", "pid", "host", "boot", "heartbeat"} {
		if !seen.has(k) {
			if o.Version > FormatVersion {
				return o, &RecordError{Reason: fmt.Sprintf("format version %d lacks %q, which version %d needs", o.Version, k, FormatVersion), Size: len(data)}
			}
			return o, &RecordError{Reason: fmt.Sprintf("missing %q", k), Size: len(data)}
		}
	}
	if o.UUID == "" || o.Host == "" || o.PID <= 0 {
		return o, &RecordError{Reason: "uuid, host and pid must be set", Size: len(data)}
	}
	return o, nil
}

func (o *Owner) set(k, v string) error {
	var err error
	switch k {
	case "uuid":
		o.UUID = v
	case "token":
		o.Token, err = strconv.ParseUint(v, 10, 64)
	case "mode":
		o.Mode = v
	case "pid":
		o.PID, err = strconv.Atoi(v)
	case "host":
		o.Host = v
	case "boot":
		o.BootID = v
	case "pidns":
		o.PIDNS = v
	case "startid":
		o.StartID = v
	case "started":
		o.Started, err = parseTime(v)
	case "acquired":
		o.Acquired, err = parseTime(v)
	case "heartbeat":
		n, t, ok := strings.Cut(v, " ")
		if !ok {
			return fmt.Errorf("want counter and time")
		}
		if o.Beat, err = strconv.ParseUint(n, 10, 64); err == nil {
			o.BeatTime, err = parseTime(t)
		}
	}
	return err
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return representable(t).Format(timeLayout)
}

// Times a record can hold: timeLayout (and RFC 3339) has four-digit years.
var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// representable returns t in UTC, clamped to the years a record can hold,
// so that Marshal always writes a record Parse accepts, with a heartbeat
// line of fixed width.
func representable(t time.Time) time.Time {
	t = t.UTC()
	switch {
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

func parseTime(s string) (time.Time, error) {
	if s == "-" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	// An offset can carry a time out of the years Marshal can write it in.
	if t = t.UTC(); t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("time %s out of range in UTC", s)
	}
	return t, nil
}

// clean keeps a field on its line whatever the host name or ID contains.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r < 0x20 {
			return '?'
		}
		return r
	}, s)
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// String says who holds the lock, for error messages and status lines. The
// host name is escaped with Printable: a record may be planted by anyone
// who can write the lock's directory.
func (o Owner) String() string {
	s := fmt.Sprintf("pid %d on %s", o.PID, Printable(o.Host))
	if !o.Acquired.IsZero() {
		s += " since " + o.Acquired.Local().Format("2006-01-02 15:04:05")
	}
	if o.Token == 0 {
		return s // a waiter's record: no token yet
	}
	return s + fmt.Sprintf(" (token %d)", o.Token)
}

// Printable returns s with what a terminal would act on or show ambiguously
// escaped as Go's %q escapes it (\x1b, \a, \r, \u202e, \xff for a byte that
// is not UTF-8), and everything else, non-ASCII letters included, as it is:
// for showing text read from disk (host names, file names) to people.
func Printable(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !strconv.IsPrint(r) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s // the usual case: nothing to escape
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\x`...)
			b = append(b, "0123456789abcdef"[s[i]>>4], "0123456789abcdef"[s[i]&15])
		case !strconv.IsPrint(r):
			q := strconv.QuoteRune(r) // '\x1b'
			b = append(b, q[1:len(q)-1]...)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// seenKeys remembers a record's keys without allocating for the usual ones.
type seenKeys struct {
	fixed [16]string
	n     int
	more  map[string]bool
}

func (s *seenKeys) has(k string) bool {
	for _, x := range s.fixed[:s.n] {
		if x == k {
			return true
		}
	}
	return s.more[k]
}

func (s *seenKeys) add(k string) {
	if s.n < len(s.fixed) {
		s.fixed[s.n] = k
		s.n++
		return
	}
	if s.more == nil {
		s.more = map[string]bool{}
	}
	s.more[k] = true
}
