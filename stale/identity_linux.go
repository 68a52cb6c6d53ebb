package stale

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return bootTimeID()
	}
	return strings.TrimSpace(string(b)), nil
}

func pidNamespace() string {
	s, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return s
}

// lookupProc reads /proc/PID/stat: its start time in clock ticks after boot
// is exact and stable, unlike a wall-clock start time derived from btime,
// which drifts by a second as the kernel corrects its clock.
func lookupProc(pid int) (Process, bool, error) {
	var buf [1024]byte // the fields read come before any that grow
	b, err := readProc("/proc/"+strconv.Itoa(pid)+"/stat", buf[:])
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errSRCH) {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return Process{}, false, nil // no procfs: lookupFallback
		}
		// Not listed: gone, or hidden. procfs mounted with hidepid=2
		// (invisible) lists only the reader's own processes, and a live
		// holder of another user's, judged gone, would lose its lock.
		// kill(pid, 0) tells (EPERM: there, another user's); such a
		// holder's start time cannot be read, so a reused PID keeps its
		// lock held while the process that has it lives.
		p, err := lookupFallback(pid)
		return p, true, err
	}
	if err != nil {
		return Process{}, false, nil
	}
	// Fields after the command, which is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Process{Exists: true}, true, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return Process{Exists: true}, true, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	p := Process{Exists: true, Zombie: f[0] == "Z" || f[0] == "X", StartID: f[19]}
	if ticks, err := strconv.ParseInt(f[19], 10, 64); err == nil {
		if bt, err := bootTimeOnce(); err == nil {
			p.Started = time.Unix(int64(bt), 0).Add(time.Duration(ticks) * time.Second / 100)
		}
	}
	return p, true, nil
}

// lookupFallback is a lookup where no procfs is mounted (a chroot, a
// sandbox): kill(pid, 0) tells whether the process exists (EPERM: another
// user's), without its start time, as gopsutil would have (whose process
// package is not linked on Linux: its start-up read /proc/stat twice, for
// CPU times no one here asks for, in every program that imports stale).
func lookupFallback(pid int) (Process, error) {
	switch err := unix.Kill(pid, 0); err {
	case nil, unix.EPERM:
		return Process{Exists: true}, nil
	case unix.ESRCH:
		return Process{}, nil
	default:
		return Process{}, os.NewSyscallError("kill", err)
	}
}

// readProc reads a /proc file's first len(buf) bytes with plain system
// calls: os.ReadFile's *os.File would add four more (poller registration)
// to every judgement of a local holder. One read: procfs makes a stat
// line whole, and copies what fits.
func readProc(name string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	for err == unix.EINTR {
		n, err = unix.Read(fd, buf)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return buf[:n], nil
}

// bootTimeOnce is bootTime, read once: every judgement of a local holder
// read /proc/stat again (its per-CPU and interrupt counters, formatted
// afresh) for the start time it reports, which is for people: the
// judgement compares start ticks (StartID).
var bootTimeOnce = sync.OnceValues(bootTime)

// bootTime is the kernel's boot time, the base of /proc/PID/stat's start
// ticks. /proc/stat's btime is the wall clock less the time since boot
// (CLOCK_BOOTTIME), taken at the read; the two clocks give it without
// /proc/stat, which the kernel formats afresh with every CPU's and
// interrupt's counters, and without gopsutil's host.BootTime, which
// probes a dozen files to tell whether it runs in a container: each was a
// part of every dotlock command's start (the host package alone, by
// compiling its regular expressions at start-up).
func bootTime() (uint64, error) {
	var wall, up unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &wall); err != nil {
		return 0, os.NewSyscallError("clock_gettime", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &up); err != nil {
		return 0, os.NewSyscallError("clock_gettime", err)
	}
	return uint64(time.Duration(wall.Nano()-up.Nano()) / time.Second), nil
}

// bootTimeID stands in for a boot ID where the kernel gives none.
func bootTimeID() (string, error) {
	bt, err := bootTimeOnce()
	if err != nil {
		return "", err
	}
	return bootTimeIDOf(bt), nil
}

var errSRCH error = unix.ESRCH
