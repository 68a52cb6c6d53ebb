package vmtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testSMBDeferredClose backs the SMB rows of the filesystem table. B
// writes a file and reads it (B alone has had it open, so the server
// grants B's client a lease and its close is deferred), and goes on
// reading it; A replaces the file by rename; B reads it once more. Read
// plainly, B gets the old content, on the default mount as with
// cache=none: the Linux client hands each open the handle the last close
// left open (for up to closetimeo, 1 s) — as dotlock's reads of P.last
// did, issuing one token twice. B's reads follow each other closely so
// that the deferred handle outlives A's rename however slowly the guests
// run (a single read after the rename missed the window under a slow
// emulation). Read as dotlock now reads on SMB, after a byte-range lock
// request (noDeferredClose), B gets the new content.
func testSMBDeferredClose(t *testing.T, c *Cluster) {
	for _, m := range []Mount{mountNamed("smb"), mountNamed("smb-nocache")} {
		// The old copy shows only while B's reads keep the handle: up to
		// three tries, in case a stall in the guest let it close.
		var plain string
		for try := 0; try < 3 && plain != "old"; try++ {
			plain = replacedWhileClosed(t, c, m, fmt.Sprintf("plain-%d", try), false)
		}
		dotlock := replacedWhileClosed(t, c, m, "nodefer", true)
		if plain != "old" {
			t.Errorf("%s (%s): read plainly, B read %q after A replaced the file, three times; the table says the client serves the old content: update it", m.Name, m.Options, plain)
		}
		if dotlock != "new" {
			t.Errorf("%s (%s): read as dotlock reads (a byte-range lock request first), B read %q after A replaced the file; want \"new\"", m.Name, m.Options, dotlock)
		}
		t.Logf("%s (%s): after A replaced the file, B read the %s content plainly, the %s content as dotlock reads", m.Name, m.Options, plain, dotlock)
	}
}

// replacedWhileClosed: B writes f and reads it, and reads it again every
// 20 ms until A has replaced f by rename; then B reads f once more (each
// read, with nodefer, as dotlock reads on SMB). It returns what B read
// the last time.
func replacedWhileClosed(t *testing.T, c *Cluster, m Mount, tag string, nodefer bool) string {
	f := fmt.Sprintf("%s/deferred-%s-%s", m.Path, m.Name, tag)
	sig := fmt.Sprintf("%s/deferred-%s-%s", SharePath, m.Name, tag)
	read := SharePath + "/vmlock cat "
	if nodefer {
		read += "-nodefer "
	}
	b, err := c.Spawn(B, "sh", "-c", fmt.Sprintf(
		"echo old >%[1]s && %[2]s%[1]s >/dev/null && touch %[3]s.go && until [ -e %[3]s.moved ]; do %[2]s%[1]s >/dev/null; sleep 0.02; done; %[2]s%[1]s", f, read, sig))
	must(t, err)
	c.Sh(t, A, time.Minute, fmt.Sprintf(
		"until [ -e %[1]s.go ]; do sleep 0.01; done; echo new >%[2]s.tmp && mv %[2]s.tmp %[2]s && touch %[1]s.moved", sig, f))
	out, errOut, exit, err := b.Wait(time.Minute)
	if err != nil || exit != 0 {
		t.Fatalf("on B: exit %d, %v: %s%s", exit, err, out, errOut)
	}
	return strings.TrimSpace(out)
}

func mountNamed(name string) Mount {
	for _, m := range Mounts {
		if m.Name == name {
			return m
		}
	}
	panic("no mount " + name)
}

// testFloor times uncontended lock+unlock rounds on every default mount, from A,
// against the O_EXCL create and mkdir floors on the same mount (bench/
// RESULTS.md's NFS and SMB columns).
func testFloor(t *testing.T, c *Cluster) {
	for _, m := range Mounts {
		if !m.Default {
			continue // the default mounts are what users have; the others are slower
		}
		dir := m.Path + "/floor-" + m.Name
		c.Sh(t, A, time.Minute, "mkdir "+dir)
		out, errOut, exit, err := c.Run(A, 5*time.Minute, SharePath+"/vmlock", "floor", "-dir", dir, "-n", "20")
		if err != nil || exit != 0 {
			t.Errorf("%s: exit %d, %v\n%s%s", m.Name, exit, err, out, errOut)
			continue
		}
		med := map[string]float64{}
		calls := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			var name string
			var ns, p90 float64
			if n, _ := fmt.Sscanf(line, "floor %s %g %g", &name, &ns, &p90); n == 3 {
				med[name] = ns / 1e6
			}
			if rest, ok := strings.CutPrefix(line, "calls "); ok {
				name, detail, _ := strings.Cut(rest, " ")
				calls[name] = detail
			}
		}
		if len(med) != 5 || len(calls) != 5 {
			t.Errorf("%s: floor output: %s", m.Name, out)
			continue
		}
		for name, detail := range calls {
			// Nothing counted means the client's statistics were not
			// found: the row would claim a free lock.
			if total, _, _ := strings.Cut(detail, " "); total == "0.0" {
				t.Errorf("%s: %s: no server calls counted: %s", m.Name, name, out)
			}
		}
		measured.addFloor(m.Name, med, calls)
		t.Logf("calls per round on %s: %v", m.Name, calls)
		t.Logf("floor %s: O_EXCL %.1f ms, mkdir %.1f ms; lockfile %.1f ms (%.1f× O_EXCL), lockdir %.1f ms (%.1f× mkdir), shared %.1f ms (%.1f× mkdir)",
			m.Name, med["excl"], med["mkdir"], med["lockfile"], med["lockfile"]/med["excl"],
			med["lockdir"], med["lockdir"]/med["mkdir"], med["lockdir-shared"], med["lockdir-shared"]/med["mkdir"])
	}
}
