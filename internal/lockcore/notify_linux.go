package lockcore

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Change notification on Linux: a waiter is woken when the lock path (or
// one of its siblings: the last record, the breaker guard, the queue) is
// created, removed or renamed by any process on this host, and when a
// holder on this host exits. On a network filesystem inotify sees only
// this host's changes, so polling stays as the fallback; it is never the
// only way a waiter learns of a release.

// dirWatcher is the process's one inotify instance.
type dirWatcher struct {
	once sync.Once
	fd   int
	err  error

	mu    sync.Mutex
	byWD  map[int32]*watchedDir
	byDir map[string]*watchedDir
}

type watchedDir struct {
	wd   int32
	dir  string
	subs map[*watchSub]struct{}
}

// watchSub wakes w for events on base and its guard (see matches).
type watchSub struct {
	base string
	w    *wakePoint
}

var watcher dirWatcher

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ONLYDIR

func (d *dirWatcher) start() error {
	d.once.Do(func() {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			d.err = err
			return
		}
		d.fd = fd
		d.byWD = map[int32]*watchedDir{}
		d.byDir = map[string]*watchedDir{}
		go d.run(os.NewFile(uintptr(fd), "inotify"))
	})
	return d.err
}

func (d *dirWatcher) run(f *os.File) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			return // not pollable, or broken: waiters poll
		}
		var wake []*wakePoint
		d.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for _, wd := range d.byWD {
					for s := range wd.subs {
						wake = append(wake, s.w)
					}
				}
				continue
			}
			wd := d.byWD[ev.Wd]
			if wd == nil {
				continue
			}
			if ev.Mask&unix.IN_IGNORED != 0 { // the directory went away
				delete(d.byWD, ev.Wd)
				if d.byDir[wd.dir] == wd {
					delete(d.byDir, wd.dir)
				}
			}
			for s := range wd.subs {
				if ev.Mask&unix.IN_IGNORED != 0 || matches(name, s.base, ev.Mask) {
					wake = append(wake, s.w)
				}
			}
		}
		d.mu.Unlock()
		for _, w := range wake {
			w.notify()
		}
	}
}

// matches picks the events a waiter must see: the lock path appearing,
// disappearing or being renamed (a hold begins or ends), and the breaker
// guard going away (a break or a queue's handoff is over). The rest — the
// last record replaced, temporary names, the guard being taken, P.want —
// come with one of those or change nothing a waiter waits for, and waking
// every waiter for each would make a herd.
func matches(name, base string, mask uint32) bool {
	switch name {
	case base:
		return true
	case base + guardSuffix:
		return mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0
	}
	return false
}

// watchPath wakes w whenever path or a sibling of it changes, until stop.
func watchPath(path string, w *wakePoint) (stop func()) {
	stop, _ = watchPathOK(path, w)
	return stop
}

// watchPathOK is watchPath, and reports whether the watch was set: inotify
// may be refused (its limits per user, a sandbox).
func watchPathOK(path string, w *wakePoint) (stop func(), ok bool) {
	d := &watcher
	if d.start() != nil {
		return func() {}, false
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	wd := d.byDir[dir]
	if wd == nil {
		n, err := unix.InotifyAddWatch(d.fd, dir, watchMask)
		if err != nil {
			return func() {}, false
		}
		wd = &watchedDir{wd: int32(n), dir: dir, subs: map[*watchSub]struct{}{}}
		if old := d.byWD[wd.wd]; old != nil { // same directory under another name
			wd = old
		} else {
			d.byWD[wd.wd] = wd
		}
		d.byDir[dir] = wd
	}
	s := &watchSub{base: base, w: w}
	wd.subs[s] = struct{}{}
	return d.unwatch(wd, s), true
}

// unwatch returns the stop of a watch: it drops s, and the directory's
// inotify watch with its last subscriber.
func (d *dirWatcher) unwatch(wd *watchedDir, s *watchSub) func() {
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(wd.subs, s)
		if len(wd.subs) == 0 && d.byWD[wd.wd] == wd {
			unix.InotifyRmWatch(d.fd, uint32(wd.wd))
			delete(d.byWD, wd.wd)
			for k, v := range d.byDir {
				if v == wd {
					delete(d.byDir, k)
				}
			}
		}
	}
}

// watchExit wakes w when process pid exits. still reports, after the
// process is pinned by a pidfd, whether pid is still the holder (not
// reused): if not, w is woken at once.
func watchExit(pid int, still func() bool, w *wakePoint) (stop func()) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return func() {}
	}
	if !still() {
		unix.Close(fd)
		w.notify()
		return func() {}
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return func() {}
	}
	go func() {
		// A pidfd becomes readable when its process exits.
		err := rc.Read(func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(p, 0)
			return n > 0
		})
		if err == nil {
			w.notify()
		}
	}()
	return func() { f.Close() }
}
