//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dotlock/dotlock/internal/testdir"
	"github.com/dotlock/dotlock/stale"
)

// plantedHost is a host field a neighbour could plant: clear the screen,
// ring the bell, return to column 0, DEL, a C1 CSI, a byte that is no UTF-8.
const plantedHost = "evil\x1b[2J\a\r\x7f\u009b\xff-host"

// plantRecord makes lock a lock directory held by a record naming
// plantedHost. Marshal cleans control bytes out of its fields, so the host
// line is rewritten by hand: Parse takes it as it is.
func plantRecord(t *testing.T, lock string) {
	t.Helper()
	now := time.Now()
	rec := stale.Owner{UUID: "5d0c1f3e-2b4a-4e6f-8a9b-0c1d2e3f4a5b", Token: 7, Mode: stale.ModeExclusive,
		PID: 4242, Host: "PLANTED", BootID: "b", Acquired: now, Beat: 1, BeatTime: now}.Marshal()
	rec = bytes.Replace(rec, []byte("\nhost: PLANTED\n"), []byte("\nhost: "+plantedHost+"\n"), 1)
	if o, err := stale.Parse(rec); err != nil || o.Host != plantedHost {
		t.Fatalf("planted record: host %q, %v", o.Host, err)
	}
	if err := os.Mkdir(lock, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lock, "owner"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
}

// terminalUnsafe describes what in b a terminal would act on: control bytes
// other than newline and tab, DEL, C1 controls, bytes that are no UTF-8.
func terminalUnsafe(b string) string {
	if !utf8.ValidString(b) {
		return "invalid UTF-8"
	}
	for _, r := range b {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) {
			return fmt.Sprintf("control character %U", r)
		}
	}
	return ""
}

// Human-readable output escapes what it shows from a record (or a path):
// a planted host field's ESC, BEL, CR, DEL, C1 and non-UTF-8 bytes never
// reach the terminal, in status, the waiting lines, errors, unlock and
// break; status --json is valid JSON with the same bytes escaped and the
// host's value intact.
func TestControlCharsEscaped(t *testing.T) {
	dir := testdir.New(t)
	lock := filepath.Join(dir, "x\x1b]0;title\a.lock") // a lock path with controls too
	plantRecord(t, lock)
	shownHost := `evil\x1b[2J\a\r\x7f\u009b\xff-host`
	for _, c := range []struct {
		args []string
		code int
		says string // in stdout or stderr: the escaped host was shown
	}{
		{[]string{"--status", lock}, 0, shownHost},
		{[]string{"--status", "--json", lock}, 0, ""},
		{[]string{"-v", "-w", "0.2", lock, "true"}, 1, "waiting for "},
		{[]string{"-v", "-n", lock, "true"}, 1, shownHost},
		{[]string{"--lock", "-v", "-w", "0.2", lock}, 1, shownHost},
		{[]string{"-u", lock}, 75, shownHost},
		{[]string{"-n", filepath.Join(dir, "no\x1b[2Jdir", "x.dotlock"), "true"}, 66, `no\x1b[2Jdir`},
		{[]string{"--break", "-v", "--stale-after", "0.3", lock}, 0, "removed the lock"}, // last: it removes the record
	} {
		r := dotlock(t, dir, c.args...).want(t, c.code, strings.Join(c.args, " "))
		all := r.stdout + r.stderr
		if bad := terminalUnsafe(all); bad != "" {
			t.Errorf("dotlock %q printed %s:\nstdout %q\nstderr %q", c.args, bad, r.stdout, r.stderr)
		}
		if !strings.Contains(all, c.says) {
			t.Errorf("dotlock %q did not say %q:\nstdout %q\nstderr %q", c.args, c.says, r.stdout, r.stderr)
		}
		if c.args[0] == "-v" && c.args[1] == "-w" && !strings.Contains(r.stderr, "/"+`x\x1b]0;title\a.lock: held by pid 4242 on `+shownHost) {
			t.Errorf("waiting line does not show the path and host escaped: %q", r.stderr)
		}
		if c.args[0] == "--break" && !strings.Contains(r.stderr, "of pid 4242 on "+shownHost) {
			t.Errorf("break does not show whose lock it removed, escaped: %q", r.stderr)
		}
		if c.args[1] == "--json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
				t.Fatalf("status --json: %v: %q", err, r.stdout)
			}
			// encoding/json turns the byte that is no UTF-8 into U+FFFD.
			if h := firstHolder(t, m)["host"]; h != strings.ToValidUTF8(plantedHost, "\uFFFD") || m["path"] != lock {
				t.Errorf("status --json: host %q, path %q; want the record's and the lock's", h, m["path"])
			}
		}
	}
}

// escapeJSON keeps the JSON's meaning: every string decodes as before.
func TestEscapeJSON(t *testing.T) {
	for _, s := range []string{"plain ü", "del\x7f c1\u0085\u009b bidi\u202e tag\U000E0001 nbsp\u00a0 end"} {
		b, err := json.Marshal(map[string]string{"k": s})
		if err != nil {
			t.Fatal(err)
		}
		e := escapeJSON(b)
		if bad := terminalUnsafe(string(e)); bad != "" {
			t.Errorf("escapeJSON(%q) = %q: %s", b, e, bad)
		}
		var m map[string]string
		if err := json.Unmarshal(e, &m); err != nil || m["k"] != s {
			t.Errorf("escapeJSON(%q) = %q decodes to %q, %v; want %q", b, e, m["k"], err, s)
		}
	}
}
