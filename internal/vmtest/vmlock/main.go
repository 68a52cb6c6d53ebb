//go:build linux

// Command vmlock is what vmtest's checks run in the guests: it takes dotlock
// locks on a shared filesystem and reports what happened, one line per
// event, for the test on the host to check.
//
//	vmlock counter -kind file|dir|shared -lock P -counter C -n N
//	vmlock hold -kind file|dir|shared -lock P [-release F] [-wait D]
//	vmlock floor -dir D -n N
//	vmlock cat [-nodefer] FILE
//
// counter takes the lock n times (or until the file -release exists);
// each exclusive hold reads the counter
// file and writes it back plus one ("hold I token T counter V"). With
// -kind shared every other hold is a shared one (RLock) that reads the
// counter twice, 20 ms apart, and fails if a writer changed it meanwhile
// ("read I token T counter V").
//
// hold takes the lock once ("held token T after D", D the wait), reports
// a loss as soon as the lock says so ("lost after D"), and releases once
// the file -release exists ("unlock ok" or "unlock: ERR"). A lock not
// taken within -wait exits 2 ("timeout after D").
//
// floor times n lock+unlock rounds of each package against the O_EXCL and
// mkdir floors in directory D ("floor NAME MEDIAN_NS P90_NS"), and what
// one round sent the server ("calls NAME TOTAL OP=N ...": NFS RPCs or SMB
// commands, per round).
//
// cat prints FILE; with -nodefer it first makes a byte-range lock request
// on it (an unlock, fcntl F_SETLK, of a byte far beyond the data), as
// dotlock does for its reads on SMB: the Linux SMB client then closes the
// file for real instead of keeping its handle.
//
// Every command exits 1 at its first unexpected error, printing it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotlock/dotlock"
	dlconfig "github.com/dotlock/dotlock/internal/config"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/lockfile"
)

// locker is what lockfile's Mutex and lockdir's RWMutex share.
type locker interface {
	Lock(context.Context) error
	Unlock() error
	Token() uint64
	Lost() <-chan struct{}
}

type config struct {
	kind, lock, counter, release, dir string
	n                                 int
	lease, heartbeat, wait            time.Duration
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: vmlock counter|hold|floor|cat [flags]")
	}
	var c config
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.StringVar(&c.kind, "kind", "file", "file (lockfile), dir (lockdir) or shared (lockdir, shared holds too)")
	fs.StringVar(&c.lock, "lock", "", "lock path")
	fs.StringVar(&c.counter, "counter", "", "counter file (must exist)")
	fs.StringVar(&c.release, "release", "", "hold: release once this file exists; counter: stop once it exists")
	fs.StringVar(&c.dir, "dir", "", "floor: directory to measure in")
	fs.IntVar(&c.n, "n", 10, "holds (counter) or rounds (floor)")
	fs.DurationVar(&c.lease, "lease", 0, "StaleAfter (0: the default)")
	fs.DurationVar(&c.heartbeat, "heartbeat", 0, "heartbeat period (0: the default)")
	fs.DurationVar(&c.wait, "wait", 2*time.Minute, "longest wait for one hold")
	nodefer := fs.Bool("nodefer", false, "cat: make a byte-range lock request first")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "cat":
		cat(fs.Arg(0), *nodefer)
	case "counter":
		counter(c)
	case "hold":
		hold(c)
	case "floor":
		floor(c)
	default:
		fail("unknown command %q", os.Args[1])
	}
}

// open returns the lock c names and, for -kind shared, its RWMutex.
func open(c config, path string) (locker, *dotlock.RWMutex) {
	var opts []dotlock.Option
	if c.lease > 0 {
		opts = append(opts, dotlock.WithStaleAfter(c.lease))
	}
	if c.heartbeat > 0 {
		opts = append(opts, dotlock.WithHeartbeat(c.heartbeat))
	}
	if c.kind == "file" {
		m, err := lockfile.New(path, opts...)
		if err != nil {
			fail("new: %v", err)
		}
		return m, nil
	}
	rw, err := lockdir.New(path, opts...)
	if err != nil {
		fail("new: %v", err)
	}
	return rw, rw
}

func counter(c config) {
	if c.lease > 0 {
		serverWait = c.lease / 2
	}
	l, rw := open(c, c.lock)
	for i := 0; i < c.n && (c.release == "" || !exists(c.release)); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.wait)
		shared := rw != nil && c.kind == "shared" && i%2 == 1
		var err error
		if shared {
			err = rw.RLock(ctx)
		} else {
			err = l.Lock(ctx)
		}
		cancel()
		if err != nil {
			fail("hold %d: lock: %v", i, err)
		}
		held := time.Now()
		unlock := l.Unlock
		if shared {
			v, err := steady(c.counter)
			if err != nil {
				fail("read %d: %v", i, err)
			}
			fmt.Printf("read %d token %d counter %d\n", i, rw.Token(), v)
			unlock = rw.RUnlock
		} else {
			v, err := bump(c.counter, held.Add(serverWait), l.Lost())
			if err != nil {
				fail("hold %d: %v", i, err)
			}
			fmt.Printf("hold %d token %d counter %d\n", i, l.Token(), v)
		}
		if err := unlock(); err != nil {
			fail("hold %d: unlock: %v", i, err)
		}
	}
}

// bump adds one to the number in file and returns the new value. It
// writes in place, fixed-width, in one write and without truncating: a
// SIGKILL between os.WriteFile's truncation and its write left an empty
// counter (chaos on SMB).
// Steps that fail as the server restarts are made again until end (the
// hold's safe time), unless lost is closed first.
func bump(file string, end time.Time, lost <-chan struct{}) (int, error) {
	var v int
	err := until(end, lost, func() (err error) {
		v, err = readCounterOnce(file)
		return err
	})
	if err != nil {
		return 0, err
	}
	// The write is of the new value, not of one more: made twice it counts
	// once, so it too is made again (TestCluster/restart: a close failed
	// with ECONNABORTED while smbd restarted).
	b := []byte(fmt.Sprintf("%020d\n", v+1))
	err = until(end, lost, func() error {
		f, err := os.OpenFile(file, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(b, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	return v + 1, err
}

// steady reads the counter twice, 20 ms apart: a writer holding the lock
// at the same time as this reader would change it.
func steady(file string) (int, error) {
	v, err := readCounter(file)
	if err != nil {
		return 0, err
	}
	time.Sleep(20 * time.Millisecond)
	w, err := readCounter(file)
	if err == nil && w != v {
		err = fmt.Errorf("counter went from %d to %d during a shared hold: a writer held the lock too", v, w)
	}
	return v, err
}

// serverWait bounds untilReached: half the lease, within which the hold
// the counter's steps run under cannot have been broken.
var serverWait = dlconfig.DefaultStaleAfter / 2

// untilReached runs fn again while it fails as a network client does while
// its server restarts (TestCluster/restart: EAGAIN from an SMB open, seen
// once), for up to serverWait. Only steps whose repeat changes nothing:
// reads, and the write of the counter's new value (not a read and write
// again, which would count twice if the failed write was made).
func untilReached(fn func() error) error { return until(time.Now().Add(serverWait), nil, fn) }

// until runs fn as untilReached does: again only if it is not yet end and
// lost is not closed (a step begun before end may still end after it: a
// write blocked while the server is away).
func until(end time.Time, lost <-chan struct{}, fn func() error) error {
	for {
		err := fn()
		if err == nil || !serverAway(err) {
			return err
		}
		select {
		case <-lost:
			return err
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(end) {
			return err
		}
	}
}

func serverAway(err error) bool {
	for _, e := range []syscall.Errno{syscall.EAGAIN, syscall.EINTR, syscall.ETIMEDOUT, syscall.EHOSTDOWN,
		syscall.ENOTCONN, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func readCounter(file string) (v int, err error) {
	err = untilReached(func() (err error) {
		v, err = readCounterOnce(file)
		return err
	})
	return v, err
}

func readCounterOnce(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("counter %q: %v", b, err)
	}
	return v, nil
}

func hold(c config) {
	l, rw := open(c, c.lock)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.wait)
	var err error
	if c.kind == "shared" {
		err = rw.RLock(ctx)
	} else {
		err = l.Lock(ctx)
	}
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Printf("timeout after %v\n", time.Since(begin))
		os.Exit(2)
	}
	if err != nil {
		fail("lock: %v", err)
	}
	held := time.Now()
	fmt.Printf("held token %d after %v\n", l.Token(), held.Sub(begin))
	lost := l.Lost()
	for c.release == "" || !exists(c.release) {
		select {
		case <-lost:
			fmt.Printf("lost after %v\n", time.Since(held))
			lost = nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	if c.kind == "shared" {
		err = rw.RUnlock()
	} else {
		err = l.Unlock()
	}
	switch {
	case err == nil:
		fmt.Println("unlock ok")
	case errors.Is(err, dotlock.ErrLost):
		fmt.Printf("unlock lost: %v\n", err)
	default:
		fmt.Printf("unlock: %v\n", err)
	}
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

func fail(format string, args ...any) {
	fmt.Printf("error: "+format+"\n", args...)
	os.Exit(1)
}
