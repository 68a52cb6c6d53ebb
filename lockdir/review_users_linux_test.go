package lockdir_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testusers"
	"github.com/dotlock/dotlock/stale"
)

// bob makes the queue directory of root's lock in a sticky directory and
// puts in it a waiter's record he forged: it names a long-lived process of
// root's (here a sleep; in life root's shell, or PID 1). A record file of
// bob's naming root's process is "not proven alive" at P (judgeHolder);
// but the queue hands P to the first waiter by copying its record into
// P/owner — a file root's scheduler creates, so owned by root — and from
// then on the lock is held, as far as every judge can tell, by root's own
// live process: until it exits, with no trace of bob.
func TestReviewUsersForgedQueueRecordLaundered(t *testing.T) {
	_, bob := testusers.Two(t)
	dir := testusers.Dir(t, 0o1777, "")
	p := filepath.Join(dir, "x.lock")
	victim := exec.Command("sleep", "60")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	proc, err := stale.SystemProcesses{}.Lookup(victim.Process.Pid)
	if err != nil || !proc.Exists {
		t.Fatalf("lookup of the sleep: %+v, %v", proc, err)
	}
	o, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o.PID, o.StartID, o.Started = victim.Process.Pid, proc.StartID, proc.Started
	forged := filepath.Join(dir, "forged")
	if err := os.WriteFile(forged, o.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	q := p + ".queue"
	asBob(t, bob, "mkdir -m 0777 "+q+" && cp "+forged+" "+q+"/00000000000000000001.w."+o.UUID)
	l, err := coreDir(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := l.Lock(ctx); err != nil {
		st, _ := l.Status()
		var who []string
		for _, h := range st.Holders {
			who = append(who, h.Owner.String())
		}
		t.Fatalf("Lock beside bob's forged queue record: %v (held by %v); want the lock: bob's record, naming root's pid %d, is not proven alive", err, who, victim.Process.Pid)
	}
	l.Unlock()
}
