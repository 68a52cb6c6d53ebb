package vmtest

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// testFaults checks the harness's fault injection: signals to a process in
// a guest, one guest's clock and a client's link. (KillVM is checked by
// the host-crash takeover, last.)
func testFaults(t *testing.T, c *Cluster) {
	p, err := c.Spawn(A, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := p.PID()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ sig, state string }{{"STOP", "T"}, {"CONT", "S"}} {
		if err := p.Signal(s.sig); err != nil {
			t.Fatal(err)
		}
		// The state changes when the signal is delivered: poll for it.
		c.Sh(t, A, 30*time.Second, "i=0; until grep -q '^State:.*"+s.state+"' /proc/"+strconv.Itoa(pid)+
			"/status; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done")
	}
	if err := p.Signal("KILL"); err != nil {
		t.Fatal(err)
	}
	if _, _, exit, err := p.Wait(30 * time.Second); err != nil || exit != 128+9 {
		t.Errorf("sleep after SIGKILL: exit %d, %v; want 137", exit, err)
	}
	testClock(t, c)
	testLink(t, c)
}

// testClock sets B an hour ahead and checks that A's clock did not move.
func testClock(t *testing.T, c *Cluster) {
	if err := c.SetClock(B, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.ParseInt(strings.TrimSpace(c.Sh(t, A, 30*time.Second, "date +%s")), 10, 64)
	b, _ := strconv.ParseInt(strings.TrimSpace(c.Sh(t, B, 30*time.Second, "date +%s")), 10, 64)
	if d := b - a; d < 3500 || d > 3700 {
		t.Errorf("B's clock minus A's: %d s; want about 3600", d)
	}
	if err := c.SetClock(B, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// testLink cuts A's link (S stops answering A's pings) and restores it.
func testLink(t *testing.T, c *Cluster) {
	ping := "/vmtest/busybox ping -c 1 -W 1 " + ServerIP
	c.Sh(t, A, 30*time.Second, ping)
	if err := c.SetLink(A, false); err != nil {
		t.Fatal(err)
	}
	if _, _, exit, err := c.Run(A, 30*time.Second, "sh", "-c", ping); err != nil || exit == 0 {
		t.Errorf("ping S with A's link down: exit %d, %v; want a failure", exit, err)
	}
	if err := c.SetLink(A, true); err != nil {
		t.Fatal(err)
	}
	c.Sh(t, A, 30*time.Second, "i=0; until "+ping+"; do i=$((i+1)); [ $i -lt 20 ] || exit 1; done")
}
