package locktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock"
	"github.com/dotlock/dotlock/internal/lockcore"
	"github.com/dotlock/dotlock/lockdir"
	"github.com/dotlock/dotlock/stale"
)

// Helper roles for shared/exclusive locks (dotlock.RWMutex). They work only
// under the lockdir Kind: they take the lock through lockdir.New.
const (
	// RoleRW holds a lockdir.New handle on Path and obeys commands, one
	// per stdin line, answering each with one line:
	//
	//	rlock, lock        RLock / Lock (bounded by Timeout): "held TOKEN"
	//	                   (or "timeout")
	//	tryrlock, trylock  TryRLock / TryLock: "held TOKEN", or
	//	                   "locked HOST/PID,... | MESSAGE" naming the
	//	                   holders of the ErrLocked
	//	runlock, unlock    RUnlock / Unlock: "released" or
	//	                   "unlock-error MESSAGE"
	//
	// Any other error ends the helper with "error MESSAGE". It prints
	// "ready PID STARTID" first; on stdin EOF it releases what it holds and
	// exits.
	RoleRW = "rw"
	// RoleChaosRW is RoleChaos on a lockdir.New handle where each hold is,
	// at random, exclusive (Lock; logged and counted as RoleChaos does) or
	// shared (RLock): a shared hold reads the counter, logs
	// "begin TOKEN HOST PID T0 V shared", reads the counter again a few
	// milliseconds later, and logs "end TOKEN HOST PID T0 T1 V2 shared"
	// (V2 must equal V: no writer ran meanwhile). Dead readers are removed
	// without OnBreak, so a shared hold ended by a kill has no break line.
	RoleChaosRW = "chaos-rw"
	// RoleFile waits for "start", then does Iterations operations on the
	// data file Data (in the DataContent format), in turn: Transform
	// (counter +1), OpenWrite in place (+1: truncate, then many small
	// writes, so that a torn file is there to be seen if exclusion fails),
	// OpenRead (check it is whole), ReadFile (check). It prints
	// "done INCREMENTS READS".
	RoleFile = "file"
)

func init() {
	procMoreRoles[RoleRW] = procRW
	procMoreRoles[RoleFile] = procFile
}

func procNewRW(k Kind, path string, opts []lockcore.Option) (*dotlock.RWMutex, error) {
	if k.Name != "lockdir" {
		return nil, fmt.Errorf("shared/exclusive roles need the lockdir kind, not %q", k.Name)
	}
	return lockdir.New(path, opts...)
}

func procRW(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	self, err := stale.Self(0, stale.ModeExclusive, time.Now())
	if err != nil {
		return fail("stale.Self: %v", err)
	}
	l, err := procNewRW(k, s.Path, opts)
	if err != nil {
		return fail("New: %v", err)
	}
	o.printf("ready %d %s", os.Getpid(), self.StartID)
	shared, exclusive := 0, false
	for line := range in {
		cmd := strings.TrimSpace(line)
		var err error
		switch cmd {
		case "rlock", "lock":
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
			if cmd == "rlock" {
				err = l.RLock(ctx)
			} else {
				err = l.Lock(ctx)
			}
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				o.printf("timeout")
				continue
			}
		case "tryrlock":
			err = l.TryRLock()
		case "trylock":
			err = l.TryLock()
		case "runlock", "unlock":
			if cmd == "runlock" {
				err = l.RUnlock()
				shared--
			} else {
				err = l.Unlock()
				exclusive = false
			}
			if err != nil {
				o.printf("unlock-error %s", procOneLine(err.Error()))
			} else {
				o.printf("released")
			}
			continue
		default:
			return fail("unknown command %q", cmd)
		}
		var le *lockcore.LockedError
		switch {
		case errors.As(err, &le):
			var names []string
			for _, w := range le.Owners {
				names = append(names, w.Host+"/"+strconv.Itoa(w.PID))
			}
			o.printf("locked %s | %s", strings.Join(names, ","), procOneLine(err.Error()))
		case err != nil:
			return fail("%s: %v", cmd, err)
		default:
			if strings.HasSuffix(cmd, "rlock") {
				shared++
			} else {
				exclusive = true
			}
			o.printf("held %d", l.Token())
		}
	}
	for ; shared > 0; shared-- {
		if err := l.RUnlock(); err != nil {
			return fail("RUnlock at exit: %v", err)
		}
	}
	if exclusive {
		if err := l.Unlock(); err != nil {
			return fail("Unlock at exit: %v", err)
		}
	}
	return 0
}

// procLocker is a helper's handle on its lock: exclusive, or with
// HelperSpec.Shared a dotlock.RWMutex held shared.
type procLocker struct {
	Locker
	rw *dotlock.RWMutex // shared holds only
}

// procOpen opens the handle s asks for.
func procOpen(k Kind, s HelperSpec, opts []lockcore.Option) (*procLocker, error) {
	if !s.Shared {
		l, err := k.New(s.Path, opts...)
		return &procLocker{Locker: l}, err
	}
	rw, err := procNewRW(k, s.Path, opts)
	return &procLocker{Locker: rw, rw: rw}, err
}

func (l *procLocker) lock(ctx context.Context) error {
	if l.rw != nil {
		return l.rw.RLock(ctx)
	}
	return l.Lock(ctx)
}

func (l *procLocker) unlock() error {
	if l.rw != nil {
		return l.rw.RUnlock()
	}
	return l.Unlock()
}

// own returns the record of the hold just taken: the record at the lock
// path, or for a shared hold the reader record with its token.
func (l *procLocker) own() (stale.Owner, error) {
	if l.rw == nil {
		return l.Owner()
	}
	rs, err := l.rw.Readers()
	if err != nil {
		return stale.Owner{}, err
	}
	for _, r := range rs {
		if r.Token == l.Token() {
			return r, nil
		}
	}
	return stale.Owner{}, fmt.Errorf("no reader record with token %d among %v", l.Token(), rs)
}

// DataContent is the content of RoleFile's data file for counter n: a
// JSON header with the counter and a payload derived from it, and a
// checksum line over everything before.
//
//	{"counter": N, "payload": "N,N,N,...,"}
//	sha256 HEX
func DataContent(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"counter\": %d, \"payload\": \"%s\"}\n", n, strings.Repeat(strconv.Itoa(n)+",", 16000))
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "sha256 %s\n", hex.EncodeToString(sum[:]))
	return b.Bytes()
}

// ParseData checks a data file (DataContent) and returns its counter.
func ParseData(data []byte) (int, error) {
	body, sumLine, ok := bytes.Cut(data, []byte("}\n"))
	if !ok {
		return 0, fmt.Errorf("torn data file (%d bytes): no end of header", len(data))
	}
	body = append(body, "}\n"...)
	sum := sha256.Sum256(body)
	want := "sha256 " + hex.EncodeToString(sum[:]) + "\n"
	if string(sumLine) != want {
		return 0, fmt.Errorf("torn data file (%d bytes): checksum line %.80q, want %q", len(data), sumLine, want)
	}
	var v struct {
		Counter int    `json:"counter"`
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, fmt.Errorf("data file: %v", err)
	}
	if !bytes.Equal(data, DataContent(v.Counter)) {
		return 0, fmt.Errorf("data file for counter %d is not the one written for it", v.Counter)
	}
	return v.Counter, nil
}

func procFile(k Kind, s HelperSpec, o *procOut, in <-chan string, opts []lockcore.Option, fail func(string, ...any) int) int {
	if k.Name != "lockdir" {
		return fail("the file role needs the lockdir kind, not %q", k.Name)
	}
	o.printf("ready %d -", os.Getpid())
	if !procWaitStart(in) {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	defer cancel()
	incs, reads := 0, 0
	for i := range s.Iterations {
		var err error
		if i%4 < 2 {
			err = procFileIncrement(ctx, s.Data, i%4 == 0, opts)
			incs++
		} else {
			err = procFileRead(ctx, s.Data, i%4 == 2, opts)
			reads++
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	o.printf("done %d %d", incs, reads)
	return 0
}

// procFileIncrement adds one to the data file's counter: replacing the
// file whole (Transform), or in place (OpenWrite: read, truncate, write
// back in many small writes).
func procFileIncrement(ctx context.Context, name string, whole bool, opts []lockcore.Option) error {
	if whole {
		err := lockdir.Transform(ctx, name, 0o644, func(old []byte) ([]byte, error) {
			n, err := ParseData(old)
			if err != nil {
				return nil, err
			}
			return DataContent(n + 1), nil
		}, opts...)
		if err != nil {
			return fmt.Errorf("transform: %w", err)
		}
		return nil
	}
	f, err := lockdir.OpenWrite(ctx, name, os.O_RDWR, 0o644, opts...)
	if err != nil {
		return fmt.Errorf("open write: %w", err)
	}
	err = func() error {
		old, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		n, err := ParseData(old)
		if err != nil {
			return fmt.Errorf("in OpenWrite: %w", err)
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		next := DataContent(n + 1)
		for off := 0; off < len(next); off += 128 {
			if _, err := f.WriteAt(next[off:min(off+128, len(next))], int64(off)); err != nil {
				return err
			}
		}
		return nil
	}()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close write: %w", cerr)
	}
	return err
}

// procFileRead reads the data file (OpenRead, or ReadFile) and checks it
// is whole.
func procFileRead(ctx context.Context, name string, open bool, opts []lockcore.Option) error {
	if !open {
		data, err := lockdir.ReadFile(ctx, name, opts...)
		if err != nil {
			return fmt.Errorf("read file: %w", err)
		}
		if _, err := ParseData(data); err != nil {
			return fmt.Errorf("ReadFile saw: %w", err)
		}
		return nil
	}
	f, err := lockdir.OpenRead(ctx, name, opts...)
	if err != nil {
		return fmt.Errorf("open read: %w", err)
	}
	data, err := io.ReadAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if _, err := ParseData(data); err != nil {
		return fmt.Errorf("OpenRead saw: %w", err)
	}
	return nil
}
