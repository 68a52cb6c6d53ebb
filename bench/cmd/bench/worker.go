package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/bench"
)

// worker is the Go side of the worker protocol, run as
// "bench worker MODE SPEC ARGS...":
//
//	contend SPEC LOCK COUNTER ID OUT -> "ready"; stdin "go END_NS"; loop; "done N"
//	rounds SPEC LOCK N               -> N+1 rounds of lock+unlock, silently
//	hold SPEC LOCK                   -> "held"; then sleeps until killed
//	wait SPEC LOCK TIMEOUT           -> "ready"; "acquired MONO_NS" or "timeout"
//	slots SPEC DIR HOLD OUT          -> "ready"; stdin "go END_NS"; loop; "done N"
//
// A round of contend is: lock, read the counter file ("N LASTID"), write
// N+1 and this worker's ID, unlock; it records N+1, the time Lock returned
// and the time Unlock was called (CLOCK_MONOTONIC).
func worker(args []string) error {
	if len(args) < 3 {
		return errors.New("usage: bench worker MODE SPEC LOCK [ARGS]")
	}
	mode, spec, lock := args[0], args[1], args[2]
	peer, s, err := bench.ParseSpec(spec)
	if err != nil {
		return err
	}
	if mode == "scale" {
		if len(args) != 6 {
			return fmt.Errorf("usage: bench worker scale SPEC DIR distinct|readers N FIRST")
		}
		n, err := strconv.Atoi(args[4])
		if err != nil {
			return err
		}
		first, err := strconv.Atoi(args[5])
		if err != nil {
			return err
		}
		return scaleRun(peer, s, lock, args[3], n, first)
	}
	l, err := peer.New(lock, s)
	if err != nil {
		return err
	}
	switch mode {
	case "probe":
		if err := cycle(l, 2); err != nil {
			return err
		}
		fmt.Println("ok")
		return nil
	case "rounds":
		if len(args) != 4 {
			return fmt.Errorf("usage: bench worker rounds SPEC LOCK N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		return cycle(l, n+1) // one more: the first is not counted
	case "uncontended":
		if len(args) != 5 {
			return fmt.Errorf("usage: bench worker uncontended SPEC LOCK BATCHES BATCHDUR")
		}
		batches, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		bd, err := time.ParseDuration(args[4])
		if err != nil {
			return err
		}
		return uncontendedLoop(l, batches, bd)
	case "contend":
		if len(args) != 6 {
			return fmt.Errorf("usage: bench worker contend SPEC LOCK COUNTER ID OUT")
		}
		return contendLoop(l, args[3], args[4], args[5])
	case "slots":
		if len(args) != 5 {
			return fmt.Errorf("usage: bench worker slots SPEC DIR HOLD OUT")
		}
		hold, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		return slotsLoop(l, hold, args[4])
	case "hold":
		if err := l.Lock(); err != nil {
			return err
		}
		fmt.Println("held")
		select {}
	case "wait":
		timeout, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		fmt.Println("ready")
		go func() {
			time.Sleep(timeout)
			fmt.Println("timeout")
			os.Exit(0)
		}()
		if err := l.Lock(); err != nil {
			return err
		}
		fmt.Printf("acquired %d\n", bench.Mono())
		l.Unlock()
		return nil
	}
	return fmt.Errorf("unknown worker mode %q", mode)
}

// cycle locks and unlocks l n times.
func cycle(l bench.Locker, n int) error {
	for range n {
		if err := l.Lock(); err != nil {
			return err
		}
		if err := l.Unlock(); err != nil {
			return err
		}
	}
	return nil
}

// uncontendedLoop prints "batch NS_PER_OP ALLOCS_PER_OP BYTES_PER_OP" for
// each batch of lock+unlock cycles, batches sized to about bd each.
func uncontendedLoop(l bench.Locker, batches int, bd time.Duration) error {
	t0 := time.Now()
	if err := cycle(l, 20); err != nil {
		return err
	}
	per := time.Since(t0) / 20
	ops := max(20, min(int(bd/max(per, time.Nanosecond)), 200000))
	runtime.GC()
	for range batches {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t := time.Now()
		if err := cycle(l, ops); err != nil {
			return err
		}
		dt := time.Since(t)
		runtime.ReadMemStats(&m1)
		fmt.Printf("batch %f %f %f\n", float64(dt.Nanoseconds())/float64(ops),
			float64(m1.Mallocs-m0.Mallocs)/float64(ops), float64(m1.TotalAlloc-m0.TotalAlloc)/float64(ops))
	}
	return nil
}

func contendLoop(l bench.Locker, counter, id, out string) error {
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "go" {
		return fmt.Errorf("expected \"go END\", got %q", line)
	}
	end, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return err
	}
	recs := make([]byte, 0, 1<<20)
	n := 0
	for bench.Mono() < end {
		if err := l.Lock(); err != nil {
			return err
		}
		acq := bench.Mono()
		data, err := os.ReadFile(counter)
		if err != nil {
			return err
		}
		c, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		if err != nil {
			return err
		}
		c++
		if err := writeCounter(counter, c, id); err != nil {
			return err
		}
		rel := bench.Mono()
		if err := l.Unlock(); err != nil {
			return err
		}
		recs = fmt.Appendf(recs, "%d %d %d\n", c, acq, rel)
		n++
	}
	if err := os.WriteFile(out, recs, 0o644); err != nil {
		return err
	}
	fmt.Printf("done %d\n", n)
	return nil
}

// writeCounter writes "N ID" over the counter file in place, padded to a
// fixed width (CounterWidth bytes), without truncating it: on ext4,
// truncating a file with data and writing it again makes close() start
// writeback (auto_da_alloc), which would cost more than any lock measured.
// The Node and Python workers write the same way.
func writeCounter(path string, n int64, id string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(counterLine(n, id), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// counterLine is "%020d %-8s\n": 30 bytes.
func counterLine(n int64, id string) []byte {
	return fmt.Appendf(nil, "%020d %-8s\n", n, id)
}

// scaleRun makes n handles — on n paths in dir, or all on one path for
// readers — takes them one after another, keeping all, then releases them
// in the same order. It prints the mean ns per operation in the ranges
// first, 10*first, ..., n ("lock ..." and "unlock ..."), and how many more
// descriptors are open at the end than before the first lock ("fds-left").
func scaleRun(peer bench.Peer, s bench.Settings, dir, kind string, n, first int) error {
	ls := make([]bench.Locker, n)
	for i := range ls {
		p := filepath.Join(dir, "x.lock")
		if kind == "distinct" {
			p = filepath.Join(dir, fmt.Sprintf("l%05d.lock", i))
		}
		var err error
		if ls[i], err = peer.New(p, s); err != nil {
			return err
		}
	}
	var bounds []int
	for k := first; k < n; k *= 10 {
		bounds = append(bounds, k)
	}
	bounds = append(bounds, n)
	fds0 := openFDs()
	runtime.GC()
	for _, op := range []struct {
		name string
		f    func(bench.Locker) error
	}{{"lock", bench.Locker.Lock}, {"unlock", bench.Locker.Unlock}} {
		line := op.name
		i := 0
		for _, b := range bounds {
			t := time.Now()
			k := 0
			for ; i < b; i++ {
				if err := op.f(ls[i]); err != nil {
					return fmt.Errorf("%s %d: %w", op.name, i+1, err)
				}
				k++
			}
			line += fmt.Sprintf(" %f", float64(time.Since(t).Nanoseconds())/float64(max(k, 1)))
		}
		fmt.Println(line)
	}
	fmt.Printf("fds-left %d\n", openFDs()-fds0)
	return nil
}

func openFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}
