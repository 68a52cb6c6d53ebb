package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The lease of the holders in these checks, and their heartbeat: short, so
// that a lapsed lease shows within seconds.
const (
	lease     = 3 * time.Second
	heartbeat = time.Second
)

// lockCase is one kind of hold on one mount: held by A as holderKind, and
// wanted by B as wanterKind (a writer waits behind a shared hold).
type lockCase struct {
	m                      Mount
	holderKind, wanterKind string
}

func (lc lockCase) name() string { return lc.m.Name + "/" + lc.holderKind }

// dir is the case's directory for the check tag: every mount shows the
// same export, so each check and case needs one of its own.
func (lc lockCase) dir(tag string) string {
	return lc.m.Path + "/" + tag + "-" + lc.m.Name + "-" + lc.holderKind
}

// lockCases are the default mounts, each with a lock file, a lock
// directory and a lock directory held shared.
func lockCases() []lockCase {
	var cs []lockCase
	for _, m := range Mounts {
		if m.Default {
			for _, lc := range []lockCase{{m, "file", "file"}, {m, "dir", "dir"}, {m, "shared", "dir"}} {
				if only(lc.name()) {
					cs = append(cs, lc)
				}
			}
		}
	}
	return cs
}

// only reports whether the case mount/kind is to run: all of them, unless
// VMTEST_ONLY lists some ("smb/dir,nfs3/file"), for debugging.
func only(name string) bool {
	list := os.Getenv("VMTEST_ONLY")
	return list == "" || strings.Contains(","+list+",", ","+name+",")
}

// each runs f for every case at once, each in a directory of its own on
// the case's mount (made by A), and waits for all of them.
func each(t *testing.T, c *Cluster, tag string, f func(t *testing.T, lc lockCase, dir string)) {
	var wg sync.WaitGroup
	for _, lc := range lockCases() {
		dir := lc.dir(tag)
		c.Sh(t, A, time.Minute, "mkdir "+dir)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(t, lc, dir)
		}()
	}
	wg.Wait()
}

// holder is a vmlock hold command in a guest.
type holder struct {
	*Proc
	release string // host path of its release file
	name    string // for messages
}

var holderSeq struct {
	sync.Mutex
	n int
}

// startHolder runs vmlock hold on host against lock; it holds until
// released (h.Release) unless holdUntilReleased is false.
func startHolder(t *testing.T, c *Cluster, host, kind, lock string, holdUntilReleased bool, extra ...string) *holder {
	holderSeq.Lock()
	holderSeq.n++
	rel := fmt.Sprintf("release-%d", holderSeq.n)
	holderSeq.Unlock()
	h := &holder{release: filepath.Join(c.Share, rel), name: host + ":" + lock}
	if !holdUntilReleased {
		h.Release()
	}
	args := append([]string{SharePath + "/vmlock", "hold", "-kind", kind, "-lock", lock,
		"-lease", lease.String(), "-heartbeat", heartbeat.String(), "-release", SharePath + "/" + rel}, extra...)
	p, err := c.Spawn(host, args...)
	if err != nil {
		t.Fatal(err)
	}
	h.Proc = p
	return h
}

// Release tells the holder to unlock.
func (h *holder) Release() { os.WriteFile(h.release, nil, 0o644) }

// held waits until the holder holds the lock and returns its token.
func (h *holder) held(timeout time.Duration) (uint64, error) {
	out, err := h.WaitOutput("held token", timeout)
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", h.name, err, out)
	}
	var tok uint64
	i := strings.Index(out, "held token")
	fmt.Sscanf(out[i:], "held token %d", &tok)
	return tok, nil
}

// finish releases the holder, waits for it to exit and returns its output.
func (h *holder) finish(t *testing.T) string {
	h.Release()
	out, errOut, exit, err := h.Wait(3 * time.Minute)
	if err != nil || (exit != 0 && exit != 2) {
		t.Errorf("%s: exit %d, %v\n%s%s", h.name, exit, err, out, errOut)
	}
	return out
}

// testLiveHolder: A holds; B wants the lock for four leases while its
// clock jumps an hour ahead, then an hour behind, then back; B must not
// get it, nor A lose it. Then A releases and B gets it, promptly, with a
// higher token.
func testLiveHolder(t *testing.T, c *Cluster) {
	type pair struct {
		lc     lockCase
		a, b   *holder
		tokenA uint64
		dir    string
	}
	var mu sync.Mutex
	var pairs []*pair
	each(t, c, "live", func(t *testing.T, lc lockCase, dir string) {
		a := startHolder(t, c, A, lc.holderKind, dir+"/lock", true)
		tok, err := a.held(time.Minute)
		if err != nil {
			t.Errorf("%s: %v", lc.name(), err)
			return
		}
		b := startHolder(t, c, B, lc.wanterKind, dir+"/lock", false, "-wait", (4 * lease).String())
		mu.Lock()
		pairs = append(pairs, &pair{lc, a, b, tok, dir})
		mu.Unlock()
	})
	// Jump B's clock while its waiters wait.
	for _, skew := range []time.Duration{time.Hour, -time.Hour, 0} {
		time.Sleep(lease)
		if err := c.SetClock(B, time.Now().Add(skew)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pairs {
		out, errOut, exit, err := p.b.Wait(time.Minute)
		if err != nil || exit != 2 {
			t.Errorf("%s: B, wanting the lock A holds (B's clock an hour ahead, then behind): exit %d, %v; want 2 (timeout)\n%s%s", p.lc.name(), exit, err, out, errOut)
		}
		if out := p.a.Output(); strings.Contains(out, "lost") {
			t.Errorf("%s: A lost its live hold while B waited:\n%s", p.lc.name(), out)
		}
	}
	// Now B waits, and A releases: no stuck lock.
	for _, p := range pairs {
		p.b = startHolder(t, c, B, p.lc.wanterKind, p.dir+"/lock", false, "-wait", time.Minute.String())
	}
	for _, p := range pairs {
		p.a.Release()
	}
	for _, p := range pairs {
		out := p.a.finish(t)
		if !strings.Contains(out, "unlock ok") {
			t.Errorf("%s: A's unlock: %s", p.lc.name(), out)
		}
		tok, err := p.b.held(time.Minute)
		if err != nil {
			t.Errorf("%s: B after A's release: %v", p.lc.name(), err)
		} else if tok <= p.tokenA {
			t.Errorf("%s: B's token %d after A's %d", p.lc.name(), tok, p.tokenA)
		}
		p.b.finish(t)
		t.Logf("%s: live holder kept; then B held, token %d after A's %d", p.lc.name(), tok, p.tokenA)
	}
}
