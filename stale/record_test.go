package stale_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// sampleOwner has every field set, with times at nanosecond precision.
func sampleOwner() stale.Owner {
	return stale.Owner{
		Version:  stale.FormatVersion,
		UUID:     "0b7e5c1a-3f0e-4f51-9a59-6c1d2b9f4e11",
		Token:    42,
		Mode:     stale.ModeExclusive,
		PID:      4242,
		Host:     "build-7",
		BootID:   "5d8f2c0e-8a3b-4b44-9f7e-1c2d3e4f5a6b",
		PIDNS:    "pid:[4026531836]",
		StartID:  "1234567",
		Started:  time.Date(2024, 3, 1, 11, 59, 58, 123456789, time.UTC),
		Acquired: time.Date(2024, 3, 1, 12, 0, 0, 1, time.UTC),
		Beat:     7,
		BeatTime: time.Date(2024, 3, 1, 12, 0, 7, 999999999, time.UTC),
	}
}

// ownerDiff lists the fields in which got differs from want; times are
// compared as instants (Equal), whatever their location.
func ownerDiff(got, want stale.Owner) []string {
	var d []string
	add := func(name string, g, w any) { d = append(d, fmt.Sprintf("%s = %#v, want %#v", name, g, w)) }
	if got.Version != want.Version {
		add("Version", got.Version, want.Version)
	}
	if got.UUID != want.UUID {
		add("UUID", got.UUID, want.UUID)
	}
	if got.Token != want.Token {
		add("Token", got.Token, want.Token)
	}
	if got.Mode != want.Mode {
		add("Mode", got.Mode, want.Mode)
	}
	if got.PID != want.PID {
		add("PID", got.PID, want.PID)
	}
	if got.Host != want.Host {
		add("Host", got.Host, want.Host)
	}
	if got.BootID != want.BootID {
		add("BootID", got.BootID, want.BootID)
	}
	if got.PIDNS != want.PIDNS {
		add("PIDNS", got.PIDNS, want.PIDNS)
	}
	if got.StartID != want.StartID {
		add("StartID", got.StartID, want.StartID)
	}
	if !got.Started.Equal(want.Started) {
		add("Started", got.Started.String(), want.Started.String())
	}
	if !got.Acquired.Equal(want.Acquired) {
		add("Acquired", got.Acquired.String(), want.Acquired.String())
	}
	if got.Beat != want.Beat {
		add("Beat", got.Beat, want.Beat)
	}
	if !got.BeatTime.Equal(want.BeatTime) {
		add("BeatTime", got.BeatTime.String(), want.BeatTime.String())
	}
	return d
}

func mustParse(t *testing.T, data []byte) stale.Owner {
	t.Helper()
	o, err := stale.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%q): %v", data, err)
	}
	return o
}

func TestMarshalParseRoundTrip(t *testing.T) {
	east := time.FixedZone("UTC+5:30", 5*3600+30*60)
	cases := map[string]func(o *stale.Owner){
		"all fields": func(*stale.Owner) {},
		"extremes": func(o *stale.Owner) {
			o.Token, o.Beat, o.PID = math.MaxUint64, math.MaxUint64, math.MaxInt32
		},
		"zero counters": func(o *stale.Owner) { o.Token, o.Beat = 0, 0 },
		"zero times": func(o *stale.Owner) {
			o.Started, o.Acquired, o.BeatTime = time.Time{}, time.Time{}, time.Time{}
		},
		"optional fields empty": func(o *stale.Owner) { o.Mode, o.PIDNS, o.StartID, o.BootID = "", "", "", "" },
		"other modes":           func(o *stale.Owner) { o.Mode = stale.ModeBreaker },
		"times not in UTC": func(o *stale.Owner) {
			o.Started, o.Acquired, o.BeatTime = o.Started.In(east), o.Acquired.In(east), o.BeatTime.In(east)
		},
		"times with monotonic reading": func(o *stale.Owner) {
			now := time.Now()
			o.Acquired, o.BeatTime = now, now.Add(time.Nanosecond)
		},
		"values with colons and spaces": func(o *stale.Owner) {
			o.Host, o.StartID, o.Mode = "host: with: colons", " 12 34 ", "shared: but odd"
		},
		"unicode host": func(o *stale.Owner) { o.Host = "hôte-ünicode-主机" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			want := sampleOwner()
			mod(&want)
			rec := want.Marshal()
			got := mustParse(t, rec)
			if d := ownerDiff(got, want); d != nil {
				t.Errorf("Parse(Marshal(o)) differs from o:\n%s\nrecord:\n%s", strings.Join(d, "\n"), rec)
			}
			for _, tm := range []time.Time{got.Started, got.Acquired, got.BeatTime} {
				if !tm.IsZero() && tm.Location() != time.UTC {
					t.Errorf("parsed time %v is in %v, want UTC", tm, tm.Location())
				}
			}
			if again := got.Marshal(); !bytes.Equal(again, rec) {
				t.Errorf("Marshal(Parse(Marshal(o))) differs:\n%s\nwant:\n%s", again, rec)
			}
		})
	}
}

func TestMarshalFormat(t *testing.T) {
	rec := string(sampleOwner().Marshal())
	want := "dotlock owner record v1\n" +
		"uuid: 0b7e5c1a-3f0e-4f51-9a59-6c1d2b9f4e11\n" +
		"token: 00000000000000000042\n" +
		"mode: exclusive\n" +
		"pid: 4242\n" +
		"host: build-7\n" +
		"boot: 5d8f2c0e-8a3b-4b44-9f7e-1c2d3e4f5a6b\n" +
		"pidns: pid:[4026531836]\n" +
		"startid: 1234567\n" +
		"started: 2024-03-01T11:59:58.123456789Z\n" +
		"acquired: 2024-03-01T12:00:00.000000001Z\n" +
		"pad: " + strings.Repeat(" ", 651) + "\n" +
		"heartbeat: 00000000000000000007 2024-03-01T12:00:07.999999999Z\n" +
		"end\n"
	if len(want) != stale.PaddedSize {
		t.Fatalf("want is %d bytes, not PaddedSize", len(want))
	}
	if rec != want {
		t.Errorf("Marshal() =\n%s\nwant\n%s", rec, want)
	}
}

func TestHeartbeatInPlace(t *testing.T) {
	beats := []uint64{0, 1, 1 << 63, math.MaxUint64}
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	times := []time.Time{
		{}, // a record written with a zero clock reading must still beat in place
		t0,
		t0.Add(time.Nanosecond),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	}
	base := sampleOwner()
	wantLen := len(base.HeartbeatLine())
	for _, b0 := range beats {
		for _, bt0 := range times {
			prev := base
			prev.Beat, prev.BeatTime = b0, bt0
			for _, b1 := range beats {
				for _, bt1 := range times {
					next := prev
					next.Beat, next.BeatTime = b1, bt1
					name := fmt.Sprintf("beat %d at %v -> beat %d at %v", b0, bt0, b1, bt1)
					line := next.HeartbeatLine()
					if len(line) != wantLen {
						t.Fatalf("%s: HeartbeatLine %q is %d bytes, want %d", name, line, len(line), wantLen)
					}
					off := next.HeartbeatOffset()
					if off != prev.HeartbeatOffset() {
						t.Fatalf("%s: HeartbeatOffset moved from %d to %d", name, prev.HeartbeatOffset(), off)
					}
					rec := prev.Marshal()
					if !bytes.HasPrefix(rec[off:], []byte("heartbeat: ")) {
						t.Fatalf("%s: HeartbeatOffset %d does not point at the heartbeat line in\n%s", name, off, rec)
					}
					copy(rec[off:], line)
					if want := next.Marshal(); !bytes.Equal(rec, want) {
						t.Fatalf("%s: record after in-place heartbeat =\n%s\nwant\n%s", name, rec, want)
					}
					got := mustParse(t, rec)
					if got.Beat != b1 || !got.BeatTime.Equal(bt1) {
						t.Fatalf("%s: parsed beat %d at %v", name, got.Beat, got.BeatTime)
					}
				}
			}
		}
	}
}

// TestMarshalClampsTimes: a time outside the years 0000..9999 (in UTC)
// cannot be written in the record's layout; Marshal clamps it rather than
// write a record Parse refuses or a heartbeat line of another width.
func TestMarshalClampsTimes(t *testing.T) {
	minT := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxT := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	width := len(sampleOwner().HeartbeatLine())
	for _, c := range []struct{ in, want time.Time }{
		{time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), minT},
		{time.Date(0, 1, 1, 0, 30, 0, 0, time.FixedZone("+1", 3600)), minT},
		{minT, minT},
		{maxT, maxT},
		{maxT.Add(time.Nanosecond), maxT},
		{time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("-2", -7200)), maxT},
		{time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC), maxT},
		{time.Unix(math.MaxInt64-62135596800, 999999999), maxT}, // the latest time.Time
		{time.Unix(-62135596800*3, 0), minT},
	} {
		o := sampleOwner()
		o.Started, o.Acquired, o.BeatTime = c.in, c.in, c.in
		if n := len(o.HeartbeatLine()); n != width {
			t.Errorf("BeatTime %v: HeartbeatLine %q is %d bytes, want %d", c.in, o.HeartbeatLine(), n, width)
		}
		got, err := stale.Parse(o.Marshal())
		if err != nil {
			t.Errorf("times %v: Parse(Marshal()): %v\n%s", c.in, err, o.Marshal())
			continue
		}
		for _, tm := range []time.Time{got.Started, got.Acquired, got.BeatTime} {
			if !tm.Equal(c.want) {
				t.Errorf("time %v came back as %v, want %v", c.in, tm, c.want)
			}
		}
	}
}

// without returns rec with the line starting with prefix removed.
func without(t *testing.T, rec []byte, prefix string) []byte {
	t.Helper()
	lines := strings.SplitAfter(string(rec), "\n")
	var b strings.Builder
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			found = true
			continue
		}
		b.WriteString(l)
	}
	if !found {
		t.Fatalf("no line %q in\n%s", prefix, rec)
	}
	return []byte(b.String())
}

// replace returns rec with old replaced by new, which must occur in it.
func replace(t *testing.T, rec []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(rec, []byte(old)) {
		t.Fatalf("no %q in\n%s", old, rec)
	}
	return bytes.Replace(rec, []byte(old), []byte(new), 1)
}

// requiredKeys are the keys liveness depends on.
var requiredKeys = []string{"uuid", "token", "pid", "host", "boot", "heartbeat"}

func TestParseBad(t *testing.T) {
	valid := sampleOwner().Marshal()
	const endLine = "end\n"
	type bad struct {
		name   string
		data   []byte
		reason string // substring of RecordError.Reason
	}
	pad := func(n int) []byte { // a valid record grown to n bytes with an unknown key
		head := string(valid[:len(valid)-len(endLine)])
		filler := n - len(valid) - len("x: \n")
		return []byte(head + "x: " + strings.Repeat("a", filler) + "\n" + endLine)
	}
	cases := []bad{
		{"empty", nil, "empty"},
		{"empty slice", []byte{}, "empty"},
		{"only magic line", []byte("dotlock owner record v1\n"), "partial"},
		{"magic without newline", []byte("dotlock owner record v1"), "not a dotlock owner record"},
		{"no final newline", valid[:len(valid)-1], "partial"},
		{"no end line", valid[:len(valid)-len(endLine)], "partial"},
		{"garbage", []byte("hello, world\n"), "not a dotlock owner record"},
		{"binary garbage", []byte{0, 1, 2, 0xff, '\n', 0xfe}, "not a dotlock owner record"},
		{"other record magic", []byte("dotlock owner recorD v1\n"), "not a dotlock owner record"},
		{"huge", pad(stale.MaxRecordSize + 1), fmt.Sprintf("larger than %d", stale.MaxRecordSize)},
		{"huge garbage", bytes.Repeat([]byte("x"), 3*stale.MaxRecordSize), "larger than"},
		{"version v0", replace(t, valid, "record v1\n", "record v0\n"), `bad format version "0"`},
		{"version vx", replace(t, valid, "record v1\n", "record vx\n"), `bad format version "x"`},
		{"version v-1", replace(t, valid, "record v1\n", "record v-1\n"), "bad format version"},
		{"version missing", replace(t, valid, "record v1\n", "record v\n"), "bad format version"},
		{"version with space", replace(t, valid, "record v1\n", "record v1 \n"), "bad format version"},
		{"data after end", append(append([]byte{}, valid...), "uuid: x\n"...), "data after end"},
		{"second record after end", append(append([]byte{}, valid...), valid...), "data after end"},
		{"blank line after end", append(append([]byte{}, valid...), '\n'), "data after end"},
		{"pid 0", replace(t, valid, "pid: 4242\n", "pid: 0\n"), "pid must be set"},
		{"pid negative", replace(t, valid, "pid: 4242\n", "pid: -4242\n"), "pid must be set"},
		{"pid not a number", replace(t, valid, "pid: 4242\n", "pid: 42a\n"), "bad pid"},
		{"pid empty", replace(t, valid, "pid: 4242\n", "pid:\n"), "bad pid"},
		{"token negative", replace(t, valid, "token: 00000000000000000042\n", "token: -1\n"), "bad token"},
		{"token overflow", replace(t, valid, "token: 00000000000000000042\n", "token: 18446744073709551616\n"), "bad token"},
		{"uuid empty", replace(t, valid, "uuid: 0b7e5c1a-3f0e-4f51-9a59-6c1d2b9f4e11\n", "uuid:\n"), "uuid, host and pid must be set"},
		{"host empty", replace(t, valid, "host: build-7\n", "host: \n"), "uuid, host and pid must be set"},
		{"heartbeat without time", replace(t, valid, "heartbeat: 00000000000000000007 2024-03-01T12:00:07.999999999Z\n", "heartbeat: 7\n"), "bad heartbeat"},
		{"heartbeat bad counter", replace(t, valid, "heartbeat: 00000000000000000007 ", "heartbeat: seven "), "bad heartbeat"},
		{"heartbeat bad time", replace(t, valid, "2024-03-01T12:00:07.999999999Z", "yesterday"), "bad heartbeat"},
		{"bad started", replace(t, valid, "started: 2024-03-01T11:59:58.123456789Z", "started: 2024-13-01T11:59:58Z"), "bad started"},
		{"time before year 0 in UTC", replace(t, valid, "started: 2024-03-01T11:59:58.123456789Z", "started: 0000-01-01T00:00:00+00:01"), "bad started"},
		{"time after year 9999 in UTC", replace(t, valid, "2024-03-01T12:00:07.999999999Z", "9999-12-31T23:59:59-01:00"), "bad heartbeat"},
		{"bad acquired", replace(t, valid, "acquired: 2024-03-01T12:00:00.000000001Z", "acquired: noon"), "bad acquired"},
		{"malformed line", replace(t, valid, "mode: exclusive\n", "mode exclusive\n"), "malformed line"},
		{"empty line", replace(t, valid, "mode: exclusive\n", "\n"), "malformed line"},
		{"duplicate key", replace(t, valid, "mode: exclusive\n", "mode: exclusive\ntoken: 43\n"), `duplicate key "token"`},
		{"duplicate unknown key", replace(t, valid, "mode: exclusive\n", "x: 1\nx: 2\n"), `duplicate key "x"`},
		{"CRLF line endings", []byte(strings.ReplaceAll(string(valid), "\n", "\r\n")), "bad format version"},
	}
	for _, k := range requiredKeys {
		cases = append(cases, bad{"missing " + k, without(t, valid, k+":"), fmt.Sprintf("missing %q", k)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := stale.Parse(c.data)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", c.data, o)
			}
			var re *stale.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Parse error %v (%T) is not a *stale.RecordError", err, err)
			}
			if !strings.Contains(re.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to mention %q", re.Reason, c.reason)
			}
			if !strings.HasPrefix(err.Error(), "owner record: ") || !strings.Contains(err.Error(), re.Reason) {
				t.Errorf("Error() = %q, want \"owner record: \" + reason", err.Error())
			}
			if len(c.data) > 0 && re.Size != len(c.data) {
				t.Errorf("Size = %d, want %d", re.Size, len(c.data))
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	valid := sampleOwner().Marshal()
	head := string(valid[:len(valid)-len("end\n")])
	grow := func(n int) []byte {
		filler := n - len(valid) - len("x: \n")
		return []byte(head + "x: " + strings.Repeat("a", filler) + "\nend\n")
	}
	at := grow(stale.MaxRecordSize)
	if len(at) != stale.MaxRecordSize {
		t.Fatalf("test record is %d bytes, want %d", len(at), stale.MaxRecordSize)
	}
	if _, err := stale.Parse(at); err != nil {
		t.Errorf("Parse of a valid record of exactly MaxRecordSize bytes: %v", err)
	}
	over := grow(stale.MaxRecordSize + 1)
	_, err := stale.Parse(over)
	var re *stale.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("Parse of MaxRecordSize+1 bytes: err = %v, want *stale.RecordError", err)
	}
	if re.Size != stale.MaxRecordSize+1 {
		t.Errorf("Size = %d, want %d", re.Size, stale.MaxRecordSize+1)
	}
}

// TestParsePartial cuts a valid record at every byte offset: only the whole
// record parses, so a reader racing the writer never takes a prefix for a
// record.
func TestParsePartial(t *testing.T) {
	for _, o := range []stale.Owner{sampleOwner(), {UUID: "u", PID: 1, Host: "h"}} {
		rec := o.Marshal()
		for n := 0; n < len(rec); n++ {
			got, err := stale.Parse(rec[:n])
			var re *stale.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Parse of the first %d of %d bytes = %+v, %v; want *stale.RecordError\n%s", n, len(rec), got, err, rec[:n])
			}
		}
		mustParse(t, rec)
	}
}

// TestMarshalCleansFields: whatever a host name or ID holds, it stays on its
// line: a planted "\nend\n" or duplicate key cannot change the record.
func TestMarshalCleansFields(t *testing.T) {
	nasty := []string{
		"evil\nend\n",
		"a\r\nuuid: x",
		"\n",
		"tab\there",
		"nul\x00byte",
		"bell\a\x1b[31m",
		"x\npid: 1\nhost: y",
	}
	lines := bytes.Count(sampleOwner().Marshal(), []byte("\n"))
	for _, s := range nasty {
		for _, field := range []string{"UUID", "Mode", "Host", "BootID", "PIDNS", "StartID"} {
			o := sampleOwner()
			ptr := map[string]*string{"UUID": &o.UUID, "Mode": &o.Mode, "Host": &o.Host, "BootID": &o.BootID, "PIDNS": &o.PIDNS, "StartID": &o.StartID}[field]
			*ptr = s
			rec := o.Marshal()
			if n := bytes.Count(rec, []byte("\n")); n != lines {
				t.Errorf("%s = %q: record has %d lines, want %d:\n%s", field, s, n, lines, rec)
			}
			got, err := stale.Parse(rec)
			if err != nil {
				t.Errorf("%s = %q: Parse(Marshal()): %v\n%s", field, s, err, rec)
				continue
			}
			gotField := map[string]string{"UUID": got.UUID, "Mode": got.Mode, "Host": got.Host, "BootID": got.BootID, "PIDNS": got.PIDNS, "StartID": got.StartID}[field]
			if strings.ContainsFunc(gotField, func(r rune) bool { return r < 0x20 }) || len(gotField) != len(s) {
				t.Errorf("%s = %q parsed back as %q; want control characters replaced one for one", field, s, gotField)
			}
			// The other fields are untouched.
			want := sampleOwner()
			wptr := map[string]*string{"UUID": &want.UUID, "Mode": &want.Mode, "Host": &want.Host, "BootID": &want.BootID, "PIDNS": &want.PIDNS, "StartID": &want.StartID}[field]
			*wptr = gotField
			if d := ownerDiff(got, want); d != nil {
				t.Errorf("%s = %q changed other fields:\n%s", field, s, strings.Join(d, "\n"))
			}
		}
	}
	o := sampleOwner()
	o.Host = "evil\nend\n"
	if got := mustParse(t, o.Marshal()); got.Host != "evil?end?" {
		t.Errorf("Host %q parsed back as %q, want %q", o.Host, got.Host, "evil?end?")
	}
}

func TestParseFutureVersion(t *testing.T) {
	valid := sampleOwner().Marshal()
	v2 := replace(t, valid, "record v1\n", "record v2\n")
	v2 = replace(t, v2, "heartbeat: ", "lease: 30s\nfuture-key: with: colons\nflag:\nheartbeat: ")
	v2 = replace(t, v2, "end\n", "zz-after-heartbeat: 1\nend\n")
	got := mustParse(t, v2)
	want := sampleOwner()
	want.Version = 2
	if d := ownerDiff(got, want); d != nil {
		t.Errorf("v2 record with unknown keys:\n%s", strings.Join(d, "\n"))
	}

	// Missing keys in a v1 record are corruption; in a later version they
	// mean a format this package does not know: the reason must say so.
	for _, k := range requiredKeys {
		t.Run("v2 without "+k, func(t *testing.T) {
			_, err := stale.Parse(without(t, v2, k+":"))
			var re *stale.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *stale.RecordError", err)
			}
			if !strings.Contains(re.Reason, "version 2") || !strings.Contains(re.Reason, k) {
				t.Errorf("Reason = %q, want it to name version 2 and %q", re.Reason, k)
			}
		})
	}

	// A v1 record with unknown keys parses too (keys may be added).
	v1 := replace(t, valid, "end\n", "extra: 1\nend\n")
	if got := mustParse(t, v1); got.Version != 1 {
		t.Errorf("Version = %d, want 1", got.Version)
	}
}

func TestOwnerString(t *testing.T) {
	o := sampleOwner()
	s := o.String()
	for _, want := range []string{"pid 4242", "build-7", "token 42", "since "} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to contain %q", s, want)
		}
	}
	o.Acquired = time.Time{}
	if s := o.String(); strings.Contains(s, "since") {
		t.Errorf("String() with no acquisition time = %q, want no \"since\"", s)
	}
}

// A host name parsed from a planted record (Parse keeps control bytes; only
// Marshal cleans them) reaches people through String escaped: no byte a
// terminal acts on.
func TestOwnerStringEscapesHost(t *testing.T) {
	o := sampleOwner()
	o.Host = "evil\x1b[2J\a\r\t\x7f\u009b\u202e\xffok-ü"
	s := o.String()
	if want := `pid 4242 on evil\x1b[2J\a\r\t\x7f\u009b\u202e\xffok-ü since `; !strings.HasPrefix(s, want) {
		t.Errorf("String() = %q, want it to begin %q", s, want)
	}
	if stale.Printable("build-7 ü") != "build-7 ü" {
		t.Errorf("Printable changed printable text: %q", stale.Printable("build-7 ü"))
	}
}

// The token advances in place, as the shared-lock anchor's does: writing
// TokenLine at TokenOffset gives exactly the record with the new token.
func TestTokenInPlace(t *testing.T) {
	o := stale.Owner{UUID: "6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f", PID: 1, Host: "h", BootID: "b", Token: 9}
	for _, tok := range []uint64{0, 10, 1 << 40, 1<<64 - 1} {
		rec := o.Marshal()
		n := o
		n.Token = tok
		copy(rec[o.TokenOffset():], n.TokenLine())
		if want := n.Marshal(); string(rec) != string(want) {
			t.Fatalf("token %d in place:\n%s\nwant:\n%s", tok, rec, want)
		}
	}
}
