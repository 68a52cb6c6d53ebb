package lockcore

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/stale"
)

// countingReader hands out data in pieces of at most chunk bytes, and
// counts the reads: on a network filesystem with direct I/O each is a
// round trip to the server.
type countingReader struct {
	data  []byte
	chunk int
	reads int
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadFewOneReadPerRecord(t *testing.T) {
	o, err := stale.Self(7, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := o.Marshal()
	r := &countingReader{data: rec, chunk: 1 << 20}
	got, err := readFew(r)
	if err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("readFew = %q, %v; want the record", got, err)
	}
	if r.reads != 1 {
		t.Errorf("reading a %d-byte record took %d reads, want 1 (io.ReadAll took 4)", len(rec), r.reads)
	}
}

func TestReadFewReadsOnAfterShortPieces(t *testing.T) {
	o, err := stale.Self(7, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := o.Marshal()
	// Short reads that do not end a record are not the end of the file.
	r := &countingReader{data: rec, chunk: 100}
	got, err := readFew(r)
	if err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("readFew in 100-byte pieces = %d bytes, %v; want the whole %d-byte record", len(got), err, len(rec))
	}
	// Nor is one that ends in "end" but not in a whole line.
	data := []byte("dotlock owner record v1\nkey: legend")
	r = &countingReader{data: data, chunk: len("dotlock owner record v1\nkey: lege")}
	if got, err := readFew(r); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("readFew = %q, %v; want %q", got, err, data)
	}
	// Anything larger than a record is seen to be larger.
	huge := []byte(strings.Repeat("x", stale.MaxRecordSize+100))
	r = &countingReader{data: huge, chunk: 512}
	if got, err := readFew(r); err != nil || len(got) != stale.MaxRecordSize+1 {
		t.Fatalf("readFew of a huge file = %d bytes, %v; want %d", len(got), err, stale.MaxRecordSize+1)
	}
}

// readAll is the rule both record readers (readFew, and readRecordFD for
// a lock directory's records) stop by: a short read is the whole file only
// if it ends with a record's last line.
func TestReadAllRule(t *testing.T) {
	for _, c := range []struct {
		got  string
		size int
		want bool
	}{
		{"dotlock owner record v1\nuuid: x\nend\n", 4097, true},
		{"dotlock owner record v1\nuuid: x\nend\n", len("dotlock owner record v1\nuuid: x\nend\n"), false}, // filled the buffer: there may be more
		{"dotlock owner record v1\nkey: legend", 4097, false},
		{"dotlock owner record v1\nkey: legend\n", 4097, false},
		{"", 4097, false},
	} {
		if got := readAll([]byte(c.got), c.size); got != c.want {
			t.Errorf("readAll(%q, %d) = %v, want %v", c.got, c.size, got, c.want)
		}
	}
}

// TestCutShort: a record read short of what the server has is read again
// (a client's cached size cut it: TestTwoHosts/CachedEmpty); a whole
// record asks the server nothing, and an entry being written, whose
// server has no more, is not read again.
func TestCutShort(t *testing.T) {
	o, err := stale.Self(7, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := o.Marshal()
	for _, c := range []struct {
		name   string
		got    []byte
		size   int64
		ok     bool
		asked  bool
		reread bool
	}{
		{"whole record", rec, 0, true, false, false},
		{"empty, server has the record", nil, int64(len(rec)), true, true, true},
		{"prefix, server has the record", rec[:100], int64(len(rec)), true, true, true},
		{"empty at the server too", nil, 0, true, true, false},
		{"prefix, all the server has", rec[:100], 100, true, true, false},
		{"server not asked", nil, 0, false, true, false},
	} {
		asked := false
		got := cutShort(c.got, func() (int64, bool) { asked = true; return c.size, c.ok })
		if got != c.reread || asked != c.asked {
			t.Errorf("%s: cutShort = %v (server asked: %v), want %v (asked: %v)", c.name, got, asked, c.reread, c.asked)
		}
	}
}
