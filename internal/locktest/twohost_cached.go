package locktest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/internal/sshfstest"
	"github.com/dotlock/dotlock/stale"
)

// The two-host tests on mounts that cache what they have seen (sshfs's
// default caches: like an NFS client's attribute cache, but for 20 s).

// thCachedHostB returns a host name for host B longer than host A's by
// more than any difference of PID digits, so that host B's records are
// always longer than host A's.
func thCachedHostB(hostA string) string {
	return "dotlock-b-" + strings.Repeat("x", min(len(hostA)+8, 50))
}

// thCachedTokens: fencing tokens stay increasing on mounts with attribute
// caching (sshfs's default caches, like an NFS client's attribute cache).
// Host A releases (its record, shorter than host B's, goes to P.last),
// host B takes and releases (its longer record replaces P.last), and once
// host A's kernel attribute cache (1 s) has expired — while sshfs's own
// 20 s attribute cache still holds the size of host A's record — host A
// takes the lock again. Its token must follow host B's.
func thCachedTokens(t *testing.T, k Kind) {
	hostA := thHostname(t)
	c := sshfstest.Start(t, sshfstest.Options{Cached: true, HostB: thCachedHostB(hostA)})
	pa, pb, pe := thPaths(c, "x.lock")

	l := procNewLock(t, k, pa, lockcore.WithStaleAfter(time.Hour))
	if err := l.TryLock(); err != nil {
		t.Fatalf("host A's first TryLock: %v", err)
	}
	tok1 := l.Token()
	if err := l.Unlock(); err != nil {
		t.Fatalf("host A's Unlock: %v", err)
	}
	last1, _ := os.ReadFile(pe + ".last")

	b := thStart(t, "b-holder", c.CommandB, k, HelperSpec{Role: RoleHold, Path: pb})
	procReady(t, b)
	tokB, _ := procHolding(t, b, "held")
	procReleased(t, b)
	lastB, _ := os.ReadFile(pe + ".last")
	if tokB <= tok1 {
		t.Fatalf("host B's token %d after host A's %d", tokB, tok1)
	}
	if len(lastB) <= len(last1) {
		// Records of one length cannot be cut by a stale size.
		t.Logf("host B's record (%d bytes) is not longer than host A's (%d)", len(lastB), len(last1))
	}

	// Let host A's kernel attribute cache (attr_timeout, 1 s by default)
	// expire. This ages a cache; it synchronises nothing.
	time.Sleep(1500 * time.Millisecond)

	if err := l.TryLock(); err != nil {
		t.Fatalf("host A's second TryLock: %v", err)
	}
	defer l.Unlock()
	if tok := l.Token(); tok <= tokB {
		t.Errorf("host A's token after host B's %d is %d: the fencing token went backwards", tokB, tok)
		// Why: host A's client still has the size of its own record for
		// P.last, and reads host B's longer record cut to that size.
		lastNow, _ := os.ReadFile(pe + ".last")
		if data, err := readTruncated(pa + ".last"); err == nil && len(data) != len(lastNow) {
			t.Logf("host A reads %d bytes of the %d-byte %s.last (a stale cached size)", len(data), len(lastNow), filepath.Base(pa))
		}
	}
}

// readTruncated reads name without asking for its size first (as
// os.ReadFile would), as the lock reads records.
func readTruncated(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// thCachedEmpty: host B's record is not broken as the empty entry host A's
// client still shows. sshfs's default caches keep the size host A saw —
// 0, while host B's entry was created and not yet written (A1..A4) — for
// 20 s, and read the record host B wrote since cut to it: empty, and
// unchanged past the grace period, as an entry abandoned half made (P5).
// Breaking it moved host B's live entry aside, read what moved as empty
// too (its cached size went with it), and removed it: both held (lock
// directories, every time on the parent). A record read short on a network
// filesystem is now read again once its size has been asked of the
// server. (A lock file's try begins with its exclusive create, after which
// host A's client read the record whole here: that kind passed on the
// parent too.)
func thCachedEmpty(t *testing.T, k Kind) {
	hostA := thHostname(t)
	c := sshfstest.Start(t, sshfstest.Options{Cached: true, HostB: thCachedHostB(hostA)})
	pa, pb, pe := thPaths(c, "x.lock")

	// Host B's entry, made by hand as its A1 makes it: empty.
	if k.Name == "lockdir" {
		if err := os.Mkdir(pb, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(k.RecordPath(pb), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// Host A looks while it is empty.
	l := procNewLock(t, k, pa, lockcore.WithStaleAfter(time.Hour), lockcore.WithGrace(200*time.Millisecond))
	var le *lockcore.LockedError
	if err := l.TryLock(); !errors.As(err, &le) {
		t.Fatalf("host A's TryLock on an empty entry = %v, want ErrLocked", err)
	}

	// Host B writes its record (A4): a holder on host B, judged by its
	// lease (an hour).
	o, err := stale.Self(1, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.BootID = c.HostB, c.BootIDB
	rec := o.Marshal()
	if _, err := f.WriteAt(rec, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if data, err := readTruncated(k.RecordPath(pa)); err == nil && len(data) != 0 {
		t.Skipf("host A's client read the %d-byte record at once: no stale size to test against", len(data))
	}

	// Host A tries again and again, past the grace period (its tries
	// watch the record, as a wait's looks do).
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		err := l.TryLock()
		if err == nil {
			l.Unlock()
			t.Fatalf("host A took the lock that host B's record holds: it broke the record as the empty entry its client still showed")
		}
		if !errors.As(err, &le) {
			t.Fatalf("host A's TryLock = %v, want ErrLocked", err)
		}
		time.Sleep(20 * time.Millisecond) // paces the tries; it synchronises nothing
	}
	if data, err := os.ReadFile(k.RecordPath(pe)); err != nil || string(data) != string(rec) {
		t.Errorf("host B's record at the server: %q, %v; want it unchanged", data, err)
	}
}
