package vmtest

import (
	"strings"
	"testing"
	"time"
)

// TestCluster boots the three VMs once and runs the checks that need them:
// the harness's own (hosts, mounts, visibility across clients, fault
// injection), then dotlock's two-host suite on each real filesystem:
// exclusion and tokens under contention (counter_test.go), turns across
// hosts (turns_test.go), a live holder
// kept while the other host's clock jumps, a release's handoff latency,
// takeovers after a SIGKILL, a SIGSTOP, a cut link and a host crash
// (takeover_test.go), a server
// restart mid-run (server_test.go), the job queue across hosts, the
// mount options' claims (options_test.go) and the lock+unlock floors.
//
//	DOTLOCK_VMTEST=1 go test -run TestCluster -v ./internal/vmtest
func TestCluster(t *testing.T) {
	helper := buildHelper(t)
	begin := time.Now()
	c := Start(t, Options{})
	if err := copyFile(helper, c.Share+"/vmlock"); err != nil {
		t.Fatal(err)
	}
	t.Run("hosts", func(t *testing.T) { testHosts(t, c) })
	t.Run("mounts", func(t *testing.T) { testMounts(t, c) })
	t.Run("faults", func(t *testing.T) { testFaults(t, c) })
	t.Run("counter", func(t *testing.T) { testCounter(t, c) })
	t.Run("turns", func(t *testing.T) { testTurns(t, c) })
	t.Run("smb-deferred-close", func(t *testing.T) { testSMBDeferredClose(t, c) })
	t.Run("floor", func(t *testing.T) { testFloor(t, c) })
	t.Run("jobqueue", func(t *testing.T) { testJobQueue(t, c) })
	t.Run("live", func(t *testing.T) { testLiveHolder(t, c) })
	t.Run("handoff", func(t *testing.T) { takeover(t, c, "handoff", faultRelease) })
	t.Run("kill", func(t *testing.T) { takeover(t, c, "kill", faultKill) })
	t.Run("stop", func(t *testing.T) { takeover(t, c, "stop", faultStop) })
	t.Run("chaos", func(t *testing.T) { testChaos(t, c, "chaos") })
	t.Run("restart", func(t *testing.T) { testServerRestart(t, c, "restart") })
	t.Run("partition", func(t *testing.T) { takeover(t, c, "partition", faultPartition) })
	t.Run("crash", func(t *testing.T) { takeover(t, c, "crash", faultCrash) }) // kills B: last
	measured.write(t, c)
	t.Logf("boot to runners %v, to mounts %v, whole test %v",
		c.Booted.Round(time.Second), c.Ready.Round(time.Second), time.Since(begin).Round(time.Second))
}

// testHosts checks that each VM is a host of its own: name and boot ID.
func testHosts(t *testing.T, c *Cluster) {
	names, boots := map[string]bool{}, map[string]bool{}
	for _, h := range []string{S, A, B} {
		out := c.Sh(t, h, 30*time.Second, "cat /proc/sys/kernel/hostname /proc/sys/kernel/random/boot_id")
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("%s: hostname and boot ID: %q", h, out)
		}
		t.Logf("%s: host name %s, boot ID %s", h, f[0], f[1])
		if names[f[0]] || boots[f[1]] {
			t.Errorf("%s: host name %s or boot ID %s seen on another VM", h, f[0], f[1])
		}
		names[f[0]], boots[f[1]] = true, true
	}
}

// testMounts checks that each mount is there on A and B, of its type, and
// that a file A creates is read by B.
func testMounts(t *testing.T, c *Cluster) {
	for _, m := range Mounts {
		for _, h := range []string{A, B} {
			line := c.Sh(t, h, 30*time.Second, "grep ' "+m.Path+" ' /proc/mounts")
			if f := strings.Fields(line); len(f) < 4 || !strings.HasPrefix(f[2], m.Type) || !hasOptions(f[3], m.Options) {
				t.Errorf("%s on %s: %q; want type %s, options %s", m.Name, h, line, m.Type, m.Options)
			}
		}
		f := m.Path + "/smoke-" + m.Name
		c.Sh(t, A, 30*time.Second, "echo from-a >"+f)
		// B never looked the name up, so no negative cache is in the way;
		// still poll, within the longest cache bound (acdirmax 60 s).
		out := c.Sh(t, B, 90*time.Second, "i=0; until cat "+f+" 2>/dev/null; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done")
		if out != "from-a\n" {
			t.Errorf("%s: B read %q, A wrote %q", m.Name, out, "from-a\n")
		}
	}
}

// hasOptions says whether the options the kernel shows (/proc/mounts)
// include those asked for; actimeo=0 shows as its four parts, and the
// nosharecache/nosharesock switches not at all.
func hasOptions(shown, asked string) bool {
	have := map[string]bool{}
	for _, o := range strings.Split(shown, ",") {
		have[o] = true
	}
	for _, o := range strings.Split(asked, ",") {
		switch o {
		case "nosharecache", "nosharesock":
		case "actimeo=0":
			if !have["acregmin=0"] && !have["actimeo=0"] {
				return false
			}
		default:
			if !have[o] {
				return false
			}
		}
	}
	return true
}
