package stale_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dotlock/dotlock/stale"
)

// FuzzParse checks that Parse never panics, rejects anything larger than
// MaxRecordSize, and that whatever it accepts Marshal writes back faithfully.
//
// Parse is lenient where Marshal is canonical, so Parse(Marshal(Parse(b)))
// equals Parse(b) only up to canonicalisation. The property checked is the
// strongest that holds:
//
//   - Version: Marshal writes FormatVersion whatever version was parsed (a
//     v2 record's unknown keys are dropped too), so Version becomes 1.
//   - Strings: Parse takes any bytes but '\n'; Marshal replaces control
//     characters with '?' and invalid UTF-8 with U+FFFD. Fields already
//     canonical come back unchanged; the others come back canonicalised.
//   - Times: Parse accepts any RFC 3339 time in 0000..9999 (any offset,
//     any precision); they come back as the same instant.
//   - Size: Marshal may be longer than its input (nanosecond times, a
//     20-digit beat, U+FFFD for bad bytes); if it passes MaxRecordSize Parse
//     rightly refuses it, and then only that refusal is checked.
//
// Beyond that the second Marshal is byte-identical to the first: Marshal of
// a parsed record is a fixed point.
func FuzzParse(f *testing.F) {
	valid := sampleOwner().Marshal()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{})
	f.Add([]byte("dotlock owner record v1\n"))
	f.Add([]byte("dotlock owner record v2\nuuid: u\ntoken: 1\npid: 1\nhost: h\nboot: b\nheartbeat: 1 -\nnew: x\nend\n"))
	f.Add([]byte("dotlock owner record v1\nuuid:\tu\x00\ntoken: 0\npid: +1\nhost: \xff\xfe\nboot:\nheartbeat: 0 2024-03-01T12:00:00+05:30\nend\n"))
	f.Add([]byte("dotlock owner record v1\nuuid: u\ntoken: 1\npid: 1\nhost: h\nboot: b\nstarted: 0000-01-01T00:00:00+00:01\nheartbeat: 1 9999-12-31T23:59:59-01:00\nend\n"))
	o := sampleOwner()
	o.Host = strings.Repeat("h", stale.MaxRecordSize-len(valid)+len(sampleOwner().Host))
	f.Add(o.Marshal()) // exactly MaxRecordSize
	o.Host += "h"
	f.Add(o.Marshal()) // one byte over
	f.Add(bytes.Repeat([]byte("x"), 2*stale.MaxRecordSize))

	f.Fuzz(func(t *testing.T, data []byte) {
		p1, err := stale.Parse(data)
		if err != nil {
			var re *stale.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Parse error %v is a %T, want *stale.RecordError", err, err)
			}
			return
		}
		if len(data) > stale.MaxRecordSize {
			t.Fatalf("Parse accepted %d bytes, more than MaxRecordSize", len(data))
		}
		if p1.Version < 1 || p1.PID <= 0 || p1.UUID == "" || p1.Host == "" {
			t.Fatalf("Parse accepted a record without version, pid, uuid or host: %+v", p1)
		}

		m1 := p1.Marshal()
		p2, err := stale.Parse(m1)
		if len(m1) > stale.MaxRecordSize {
			if err == nil {
				t.Fatalf("Parse accepted Marshal output of %d bytes", len(m1))
			}
			return
		}
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(data))): %v\ndata:\n%q\nmarshalled:\n%q", err, data, m1)
		}
		want := p1
		want.Version = stale.FormatVersion
		for _, s := range []*string{&want.UUID, &want.Mode, &want.Host, &want.BootID, &want.PIDNS, &want.StartID} {
			*s = canonical(*s)
		}
		if d := ownerDiff(p2, want); d != nil {
			t.Fatalf("round trip changed the record:\n%s\ndata:\n%q\nmarshalled:\n%q", strings.Join(d, "\n"), data, m1)
		}
		if m2 := p2.Marshal(); !bytes.Equal(m2, m1) {
			t.Fatalf("Marshal is not a fixed point:\n%q\nthen\n%q", m1, m2)
		}
		// The heartbeat can be rewritten in place in any parsed record.
		next := p2
		next.Beat++
		next.BeatTime = next.BeatTime.Add(time.Second)
		if next.BeatTime.Year() > 9999 {
			next.BeatTime = time.Time{}
		}
		rec := bytes.Clone(m1)
		off := next.HeartbeatOffset()
		if off != p2.HeartbeatOffset() {
			t.Fatalf("heartbeat offset moved: %d then %d", p2.HeartbeatOffset(), off)
		}
		if line := next.HeartbeatLine(); len(line) != len(p2.HeartbeatLine()) || int(off)+len(line) > len(rec) {
			t.Fatalf("heartbeat line %q does not fit in place of %q in\n%q", line, p2.HeartbeatLine(), m1)
		}
		copy(rec[off:], next.HeartbeatLine())
		if !bytes.Equal(rec, next.Marshal()) {
			t.Fatalf("in-place heartbeat of\n%q\ngave\n%q\nwant\n%q", m1, rec, next.Marshal())
		}
	})
}

// canonical is what Marshal makes of a string field: control characters
// become '?', invalid UTF-8 bytes become U+FFFD.
func canonical(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r < 0x20 {
			r = '?'
		}
		b.WriteRune(r)
		s = s[n:]
	}
	return b.String()
}

// FuzzLooksLikeRecord checks the line between what a lock may remove and
// what it must leave alone: every record Parse accepts, and every prefix
// of one (a record being written, or torn), looks like a record; anything
// else with a byte off the record's first line does not.
func FuzzLooksLikeRecord(f *testing.F) {
	valid := sampleOwner().Marshal()
	f.Add(valid, uint16(len(valid)/2))
	f.Add([]byte("1\n2\n3\n"), uint16(0))
	f.Add([]byte("dotlock"), uint16(3))
	f.Add(bytes.Repeat([]byte("dotlock owner record v1\n"), 200), uint16(24))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		if _, err := stale.Parse(data); err == nil && !stale.LooksLikeRecord(data) {
			t.Fatalf("Parse accepts %q, LooksLikeRecord does not", data)
		}
		if n := int(cut) % (len(valid) + 1); !stale.LooksLikeRecord(valid[:n]) {
			t.Fatalf("a record cut at %d does not look like one: %q", n, valid[:n])
		}
		if stale.LooksLikeRecord(data) && strings.Trim(string(data), "\x00") != "" {
			first := "dotlock owner record v"
			n := min(len(data), len(first))
			if string(data[:n]) != first[:n] || len(data) > stale.MaxRecordSize {
				t.Fatalf("LooksLikeRecord(%q) is true", data)
			}
		}
	})
}
