package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/bench"
)

// SlotsResult is scenario 6: 2N processes share a semaphore of N slots,
// each holding a slot for Hold per round.
type SlotsResult struct {
	Slots, Procs int
	Hold, Dur    time.Duration
	Holds        int
	Peak         int     // most holds at once (CLOCK_MONOTONIC intervals)
	Util         float64 // time held / (Slots × Dur): 1 is every slot always busy
	PerProc      []int
	Err          error
}

// slotsLoop is the worker's side: acquire, hold, release until END,
// recording "ACQ REL" (CLOCK_MONOTONIC) per round.
func slotsLoop(l bench.Locker, hold time.Duration, out string) error {
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return err
	}
	var end int64
	if _, err := fmt.Sscanf(line, "go %d", &end); err != nil {
		return fmt.Errorf("expected \"go END\", got %q", line)
	}
	var recs []byte
	n := 0
	for bench.Mono() < end {
		if err := l.Lock(); err != nil {
			return err
		}
		acq := bench.Mono()
		time.Sleep(hold)
		rel := bench.Mono()
		if err := l.Unlock(); err != nil {
			return err
		}
		recs = fmt.Appendf(recs, "%d %d\n", acq, rel)
		n++
	}
	if err := os.WriteFile(out, recs, 0o644); err != nil {
		return err
	}
	fmt.Printf("done %d\n", n)
	return nil
}

func slotsRun(dirs []string, slots int, hold, dur time.Duration) SlotsResult {
	r := SlotsResult{Slots: slots, Procs: 2 * slots, Hold: hold, Dur: dur}
	d, err := os.MkdirTemp(dirs[0], "slots-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(d)
	rel := filepath.Base(d)
	spec := "dotlock-semaphore,slots=" + strconv.Itoa(slots)
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.kill()
		}
	}()
	var cmds []*exec.Cmd
	for i := range r.Procs {
		sem := filepath.Join(dirs[i%len(dirs)], rel, "sem")
		cmds = append(cmds, exec.Command(self, "worker", "slots", spec, sem, hold.String(), filepath.Join(d, fmt.Sprintf("out.%d", i))))
	}
	if ps, err = startReady(&ps, cmds); err != nil {
		r.Err = err
		return r
	}
	goAll(ps, dur)
	type event struct{ at, d int64 }
	var ev []event
	var busy int64
	for i, p := range ps {
		if _, err := p.expect("done", dur+60*time.Second); err != nil {
			r.Err = err
			return r
		}
		data, err := os.ReadFile(filepath.Join(d, fmt.Sprintf("out.%d", i)))
		if err != nil {
			r.Err = err
			return r
		}
		cnt := 0
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var acq, rel int64
			if _, err := fmt.Sscan(l, &acq, &rel); err != nil {
				continue
			}
			ev = append(ev, event{acq, 1}, event{rel, -1})
			busy += rel - acq
			cnt++
		}
		r.PerProc = append(r.PerProc, cnt)
		r.Holds += cnt
	}
	sort.Slice(ev, func(i, j int) bool { return ev[i].at < ev[j].at || (ev[i].at == ev[j].at && ev[i].d < ev[j].d) })
	in := 0
	for _, e := range ev {
		in += int(e.d)
		r.Peak = max(r.Peak, in)
	}
	r.Util = float64(busy) / float64(int64(slots)*dur.Nanoseconds())
	if r.Peak > slots {
		r.Err = fmt.Errorf("%d holders at once with %d slots: exclusion failed", r.Peak, slots)
	}
	return r
}
