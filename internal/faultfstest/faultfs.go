//go:build linux

package faultfstest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Op is a filesystem operation faults can be injected into.
type Op string

// The operations. Lookup is every resolution of a name not in the kernel's
// cache (with caches off: every path walk, lstat, open); Getattr is stat
// of a known node (fstat, and stat with caches off).
const (
	OpLookup  Op = "lookup"
	OpGetattr Op = "getattr"
	OpCreate  Op = "create" // open with O_CREAT of a name that does not exist
	OpOpen    Op = "open"
	OpRead    Op = "read"
	OpWrite   Op = "write"
	OpFsync   Op = "fsync"
	OpMkdir   Op = "mkdir"
	OpRmdir   Op = "rmdir"
	OpUnlink  Op = "unlink"
	OpRename  Op = "rename" // matched by the old or the new name
	OpReaddir Op = "readdir"
)

// Ops lists every operation.
var Ops = []Op{OpLookup, OpGetattr, OpCreate, OpOpen, OpRead, OpWrite, OpFsync, OpMkdir, OpRmdir, OpUnlink, OpRename, OpReaddir}

// Action is what a rule does to a call it fires on.
type Action int

const (
	// Fail: report Errno without doing anything.
	Fail Action = iota
	// LostReply: do the operation, then report Errno, as when a network
	// filesystem's reply is lost: a create happened (a retry gets EEXIST),
	// a rename moved, a write landed. For lookups, getattrs, opens and
	// reads it is the same as Fail.
	LostReply
	// Torn: a write lands only its first half, then reports Errno. Other
	// operations: as Fail.
	Torn
	// Delay: wait Delay, then do the operation. Concurrent calls overtake
	// a delayed one, reordering what other clients see.
	Delay
)

func (a Action) String() string {
	switch a {
	case Fail:
		return "fail"
	case LostReply:
		return "lost-reply"
	case Torn:
		return "torn"
	case Delay:
		return "delay"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Rule says which calls fail and how.
type Rule struct {
	Op     Op
	Name   string // filepath.Match pattern for the base name; "" matches every name
	Action Action
	Errno  syscall.Errno // for Fail, LostReply, Torn (default EIO)
	Delay  time.Duration // for Delay
	Prob   float64       // chance that a matching call fires; 0 counts as 1
	After  int           // let this many matching calls per name pass first
	Times  int           // fire at most this many times in all; 0: no limit
}

func (r Rule) String() string {
	s := fmt.Sprintf("%s %q %s", r.Op, r.Name, r.Action)
	if r.Action == Delay {
		s += " " + r.Delay.String()
	} else {
		s += " " + r.errno().Error()
	}
	return s + fmt.Sprintf(" prob=%.2f after=%d times=%d", r.Prob, r.After, r.Times)
}

func (r Rule) errno() syscall.Errno {
	if r.Errno == 0 {
		return syscall.EIO
	}
	return r.Errno
}

// Fault is one injected fault, for logs.
type Fault struct {
	Rule int // index in the rules given to Set
	Op   Op
	Name string
	Action
	Errno syscall.Errno
}

func (f Fault) String() string {
	return fmt.Sprintf("rule %d: %s %s: %s %v", f.Rule, f.Op, f.Name, f.Action, f.Errno)
}

// FS is a mounted fault-injecting loopback filesystem.
type FS struct {
	Backing string // the directory passed through: the fault-free view
	Mount   string // where it is mounted

	server *fuse.Server

	mu    sync.Mutex
	seed  uint64
	rules []Rule
	fired []int          // per rule
	seen  map[string]int // "rule/op/name" -> matching calls so far
	log   []Fault
}

// Options for Mount.
type Options struct {
	// CacheTimeout, if positive, lets the kernel cache entries (positive
	// and negative) and attributes for that long, so that changes made in
	// the backing directory are seen late through the mount (stale
	// visibility, as with sshfs or NFS attribute caching). Zero: no
	// caching, every call reaches the filesystem and its rules.
	CacheTimeout time.Duration
	Debug        bool // log every FUSE request
}

// Usable reports why FUSE cannot be mounted here, or "" if it can.
func Usable() string {
	if os.Getuid() != 0 {
		return "not root: mounting the fault-injecting FUSE filesystem needs root"
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "no /dev/fuse (install fuse3, load the fuse module): " + err.Error()
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			return "no fusermount3 or fusermount on PATH (install fuse3)"
		}
	}
	return ""
}

// Mount mounts a fault-injecting view of backing at mountpoint. No rules
// are set: it passes everything through until Set.
func Mount(backing, mountpoint string, o Options) (*FS, error) {
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, err
	}
	f := &FS{Backing: backing, Mount: mountpoint, seen: map[string]int{}}
	timeout := o.CacheTimeout
	opts := &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		MountOptions: fuse.MountOptions{
			FsName: "faultfs",
			Name:   "faultfs",
			Debug:  o.Debug,
		},
	}
	srv, err := fs.Mount(mountpoint, &node{LoopbackNode: root.(*fs.LoopbackNode), fs: f}, opts)
	if err != nil {
		return nil, err
	}
	f.server = srv
	return f, nil
}

// MountT mounts a fault-injecting view of a fresh directory for a test, and
// unmounts it when the test ends. It skips the test, saying why, where FUSE
// cannot be mounted.
func MountT(t testing.TB, o Options) *FS {
	t.Helper()
	if why := Usable(); why != "" {
		t.Skip(why)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := Mount(backing, mnt, o)
	if err != nil {
		t.Skip("cannot mount FUSE here: ", err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return f
}

// Unmount unmounts the filesystem.
func (f *FS) Unmount() error {
	f.Clear()
	err := f.server.Unmount()
	f.server.Wait()
	return err
}

// Set replaces the rules; seed decides which matching calls fire.
func (f *FS) Set(seed uint64, rules ...Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seed, f.rules = seed, rules
	f.fired = make([]int, len(rules))
	f.seen = map[string]int{}
	f.log = nil
}

// Clear removes all rules: from now on everything passes through.
func (f *FS) Clear() { f.Set(0) }

// Faults returns the faults injected since the last Set.
func (f *FS) Faults() []Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Fault(nil), f.log...)
}

// decide returns what to do with a call of op on names (the first is
// logged): delay first, then act (Fail, LostReply, Torn) with errno, or
// pass through (act < 0).
func (f *FS) decide(op Op, names ...string) (delay time.Duration, act Action, errno syscall.Errno) {
	if os.Getenv("FAULTFS_TRACE") != "" {
		fmt.Fprintln(os.Stderr, "faultfs:", op, names)
	}
	act = -1
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.Op != op || !matchAny(r.Name, names) {
			continue
		}
		key := fmt.Sprintf("%d/%s/%s", i, op, names[0])
		n := f.seen[key]
		f.seen[key] = n + 1
		if n < r.After || (r.Times > 0 && f.fired[i] >= r.Times) || !f.chance(i, key, n, r.Prob) {
			continue
		}
		if r.Action == Delay {
			f.fired[i]++
			delay += r.Delay
			f.log = append(f.log, Fault{Rule: i, Op: op, Name: names[0], Action: Delay})
			continue
		}
		if act >= 0 {
			continue // one failure per call: the first rule's
		}
		f.fired[i]++
		act, errno = r.Action, r.errno()
		f.log = append(f.log, Fault{Rule: i, Op: op, Name: names[0], Action: act, Errno: errno})
	}
	return delay, act, errno
}

// chance decides the n-th matching call by a hash, not a shared random
// stream, so that other calls' interleaving does not change it.
func (f *FS) chance(rule int, key string, n int, prob float64) bool {
	if prob <= 0 || prob >= 1 {
		return true
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], f.seed)
	h.Write(b[:])
	h.Write([]byte(key))
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	return float64(h.Sum64()>>11)/(1<<53) < prob
}

func matchAny(pattern string, names []string) bool {
	if pattern == "" {
		return true
	}
	for _, n := range names {
		if ok, _ := filepath.Match(pattern, n); ok {
			return true
		}
	}
	return false
}

// node is a loopback node whose operations consult the rules.
type node struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeStatxer        = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
)

func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fs: n.fs}
}

func (n *node) name() string {
	return filepath.Base(n.EmbeddedInode().Path(nil))
}

// before applies a call's delay and reports its action.
func (n *node) before(op Op, names ...string) (Action, syscall.Errno) {
	delay, act, errno := n.fs.decide(op, names...)
	if delay > 0 {
		time.Sleep(delay)
	}
	return act, errno
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if act, errno := n.before(OpLookup, name); act >= 0 {
		return nil, errno
	}
	return n.LoopbackNode.Lookup(ctx, name, out)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if act, errno := n.before(OpGetattr, n.name()); act >= 0 {
		return errno
	}
	return n.LoopbackNode.Getattr(ctx, f, out)
}

func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	if act, errno := n.before(OpGetattr, n.name()); act >= 0 {
		return errno
	}
	return n.LoopbackNode.Statx(ctx, f, flags, mask, out)
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	act, errno := n.before(OpCreate, name)
	if act < 0 || act == LostReply {
		ch, fh, fl, e := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_DIRECT, mode, out)
		if act < 0 || e != 0 {
			return ch, noPassthrough(fh), fl, e
		}
		if r, ok := fh.(fs.FileReleaser); ok {
			r.Release(ctx) // the caller never learns of this handle
		}
	}
	return nil, nil, 0, errno
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if act, errno := n.before(OpOpen, n.name()); act >= 0 {
		return nil, 0, errno
	}
	// The kernel does direct I/O for O_DIRECT opens itself; the backing
	// file need not (its alignment rules would refuse our buffers).
	fh, fl, e := n.LoopbackNode.Open(ctx, flags&^syscall.O_DIRECT)
	return noPassthrough(fh), fl, e
}

// file is a loopback file that the kernel may not read and write directly
// (FUSE passthrough), so that reads and writes reach the rules.
type file struct{ *fs.LoopbackFile }

func (file) PassthroughFd() (int, bool) { return -1, false }

func noPassthrough(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return file{lf}
	}
	return fh
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if act, errno := n.before(OpRead, n.name()); act >= 0 {
		return nil, errno
	}
	return f.(fs.FileReader).Read(ctx, dest, off)
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	act, errno := n.before(OpWrite, n.name())
	switch act {
	case LostReply:
		f.(fs.FileWriter).Write(ctx, data, off)
	case Torn:
		f.(fs.FileWriter).Write(ctx, data[:len(data)/2], off)
	}
	if act >= 0 {
		return 0, errno
	}
	return f.(fs.FileWriter).Write(ctx, data, off)
}

func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	act, errno := n.before(OpFsync, n.name())
	if act < 0 || act == LostReply {
		if e := f.(fs.FileFsyncer).Fsync(ctx, flags); act < 0 || e != 0 {
			return e
		}
	}
	return errno
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	act, errno := n.before(OpMkdir, name)
	if act < 0 {
		return n.LoopbackNode.Mkdir(ctx, name, mode, out)
	}
	if act == LostReply {
		if err := os.Mkdir(filepath.Join(n.backing(), name), os.FileMode(mode)); err != nil {
			return nil, fs.ToErrno(err)
		}
	}
	return nil, errno
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	act, errno := n.before(OpRmdir, name)
	if act < 0 || act == LostReply {
		if e := n.LoopbackNode.Rmdir(ctx, name); act < 0 || e != 0 {
			return e
		}
	}
	return errno
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	act, errno := n.before(OpUnlink, name)
	if act < 0 || act == LostReply {
		if e := n.LoopbackNode.Unlink(ctx, name); act < 0 || e != 0 {
			return e
		}
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	act, errno := n.before(OpRename, name, newName)
	if act < 0 || act == LostReply {
		if e := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); act < 0 || e != 0 {
			return e
		}
	}
	return errno
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if act, errno := n.before(OpReaddir, n.name()); act >= 0 {
		return nil, 0, errno
	}
	return n.LoopbackNode.OpendirHandle(ctx, flags)
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if act, errno := n.before(OpReaddir, n.name()); act >= 0 {
		return nil, errno
	}
	return n.LoopbackNode.Readdir(ctx)
}

// backing is the node's directory in the backing tree.
func (n *node) backing() string {
	return filepath.Join(n.RootData.Path, n.EmbeddedInode().Path(nil))
}
