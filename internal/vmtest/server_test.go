package vmtest

import (
	"sync"
	"testing"
	"time"
)

// restartScript restarts S's servers: nfsd (its NFS v4 state lost; a
// grace period of 10 s follows, see serverScript) and smbd (every SMB
// session dropped; clients reconnect).
const restartScript = `set -e
rpc.nfsd 0
rpc.nfsd 4
pkill -x smbd
i=0; while pidof smbd >/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
smbd -D
`

// testServerRestart runs the counter on every default mount and lock
// kind, and restarts S's servers in the middle of the runs: no update may
// be lost, no token repeat, no hold fail.
func testServerRestart(t *testing.T, c *Cluster, tag string) {
	var wg sync.WaitGroup
	for _, m := range Mounts {
		if !m.Default {
			continue
		}
		for _, kind := range []string{"file", "dir", "shared"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				counterRun(t, c, m, kind, tag, 2*holdsPerHost)
			}()
		}
	}
	time.Sleep(8 * time.Second) // the runs are under way: the restart hits holds and waits
	begin := time.Now()
	c.Sh(t, S, time.Minute, restartScript)
	t.Logf("servers restarted in %v", time.Since(begin).Round(100*time.Millisecond))
	wg.Wait()
}
