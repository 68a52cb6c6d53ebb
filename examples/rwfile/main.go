// Command rwfile shows readers and writers sharing one data file through
// lockdir.OpenRead, lockdir.OpenWrite and lockdir.Transform: several
// processes — on one host, or on several hosts sharing the directory — read
// it together, write it one at a time, and never see it half written.
//
//	go run ./examples/rwfile
//	go run ./examples/rwfile -unlocked   # the same without the locks, to see what goes wrong
//
// It starts reader and writer processes (this program, re-executed) on one
// data file. Each writer updates it several times, alternating two ways:
//
//   - OpenWrite, then rewriting the file in place in several chunks: a
//     reader that came in between two chunks would see it half written —
//     the shared lock of OpenRead keeps readers out until Close.
//   - Transform: a read-modify-write whose result replaces the file whole.
//
// Each update increments the version the file carries. Readers read the
// file over and over with OpenRead and check that it is whole (every line
// carries the same version, and the last line is there); at the end the
// version must equal the number of updates made — no read-modify-write was
// lost to another writer's.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dotlock/dotlock/lockdir"
)

var (
	role     = flag.String("role", "", "reader or writer: run as one (used by the example itself)")
	data     = flag.String("data", "", "the data file (default: one in a new temporary directory)")
	writers  = flag.Int("writers", 3, "writer processes")
	readers  = flag.Int("readers", 3, "reader processes")
	updates  = flag.Int("updates", 10, "updates per writer")
	lines    = flag.Int("lines", 200, "lines in the data file (it is written in chunks of 1 KiB)")
	unlocked = flag.Bool("unlocked", false, "use no locks: see torn reads and lost updates")
)

const patience = 2 * time.Minute // one lock wait longer than this is stuck

func main() {
	flag.Parse()
	var err error
	switch *role {
	case "writer":
		err = writer(*data)
	case "reader":
		err = reader(*data)
	case "":
		err = run()
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rwfile:", err)
		os.Exit(1)
	}
}

// content is the data file at version v: every line carries v, and the last
// line says the file ends there.
func content(v int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "version %d\n", v)
	for i := range *lines {
		fmt.Fprintf(&b, "version %d line %04d ..................................\n", v, i)
	}
	fmt.Fprintf(&b, "end of version %d\n", v)
	return b.Bytes()
}

// check returns the version in a whole file, or an error for a file that is
// half written (or mixes two versions).
func check(b []byte) (int, error) {
	first, _, _ := bytes.Cut(b, []byte("\n"))
	v, err := strconv.Atoi(strings.TrimPrefix(string(first), "version "))
	if err != nil {
		return 0, fmt.Errorf("half written: first line %q", first)
	}
	if !bytes.Equal(b, content(v)) {
		return v, fmt.Errorf("half written: %d bytes, not those of version %d", len(b), v)
	}
	return v, nil
}

// writer makes its updates, alternating an in-place rewrite under OpenWrite
// with a Transform.
func writer(name string) error {
	for i := range *updates {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		var err error
		if i%2 == 0 {
			err = rewriteInPlace(ctx, name)
		} else {
			err = transform(ctx, name)
		}
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// rewriteInPlace opens the file for writing under the exclusive lock, reads
// it, and writes the next version over it in 1 KiB chunks.
func rewriteInPlace(ctx context.Context, name string) error {
	var f interface {
		io.ReadWriteSeeker
		Truncate(int64) error
		Close() error
	}
	if *unlocked {
		of, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		f = of
	} else {
		lf, err := lockdir.OpenWrite(ctx, name, os.O_RDWR, 0o644)
		if err != nil {
			return err
		}
		f = lf // *lockdir.File: Close closes the file, then releases the lock
	}
	old, err := io.ReadAll(f)
	if err == nil {
		var v int
		v, _ = check(old) // unlocked, the file may be torn: count from what is there
		err = writeChunks(f, content(v+1))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeChunks(f interface {
	io.WriteSeeker
	Truncate(int64) error
}, b []byte) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	for len(b) > 0 {
		n := min(len(b), 1024)
		if _, err := f.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// transform replaces the file whole with the next version.
func transform(ctx context.Context, name string) error {
	next := func(old []byte) ([]byte, error) {
		v, _ := check(old)
		return content(v + 1), nil
	}
	if *unlocked {
		old, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		b, _ := next(old)
		tmp := fmt.Sprintf("%s.tmp.%d", name, os.Getpid())
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, name)
	}
	return lockdir.Transform(ctx, name, 0o644, next)
}

// reader reads the file under a shared lock until the writers are done,
// and reports how many reads it made, the versions it saw, and how many
// reads found the file half written.
func reader(name string) error {
	done := filepath.Join(filepath.Dir(name), "writers-done")
	reads, torn, lo, hi := 0, 0, -1, -1
	for {
		// Look for the writers' end before reading, so that the last read
		// sees the final version.
		_, err := os.Stat(done)
		finished := err == nil
		var b []byte
		if *unlocked {
			b, err = os.ReadFile(name)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			b, err = readShared(ctx, name)
			cancel()
		}
		if err != nil {
			return err
		}
		reads++
		v, err := check(b)
		if err != nil {
			torn++
		} else {
			if lo < 0 {
				lo = v
			}
			hi = max(hi, v)
		}
		if finished {
			break
		}
	}
	fmt.Printf("reads %d torn %d versions %d %d\n", reads, torn, lo, hi)
	return nil
}

// readShared is one read under the shared lock; lockdir.ReadFile does the
// same in one call.
func readShared(ctx context.Context, name string) ([]byte, error) {
	f, err := lockdir.OpenRead(ctx, name) // waits while a writer holds it
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f) // other readers may be reading too
	if cerr := f.Close(); err == nil {
		err = cerr // closes, then releases the shared lock
	}
	return b, err
}

func run() error {
	name := *data
	if name == "" {
		dir, err := os.MkdirTemp("", "rwfile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		name = filepath.Join(dir, "ledger.txt")
	}
	done := filepath.Join(filepath.Dir(name), "writers-done")
	if err := os.Remove(done); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ctx := context.Background()
	if err := lockdir.WriteFile(ctx, name, content(0), 0o644); err != nil {
		return err
	}
	mode := "guarded by the lock directory " + lockdir.LockPath(name)
	if *unlocked {
		mode = "WITHOUT locks"
	}
	fmt.Printf("data file %s (%d bytes), %s\n", name, len(content(0)), mode)
	fmt.Printf("%d writer processes x %d updates (in place with OpenWrite, and whole with Transform, in turn); %d reader processes\n",
		*writers, *updates, *readers)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(role string) (*exec.Cmd, *bytes.Buffer, error) {
		var out bytes.Buffer
		cmd := exec.Command(self, "-role", role, "-data", name, "-updates", strconv.Itoa(*updates),
			"-lines", strconv.Itoa(*lines), "-unlocked="+strconv.FormatBool(*unlocked))
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		return cmd, &out, cmd.Start()
	}
	type proc struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var rs, ws []proc
	for range *readers {
		cmd, out, err := start("reader")
		if err != nil {
			return err
		}
		rs = append(rs, proc{cmd, out})
	}
	for range *writers {
		cmd, out, err := start("writer")
		if err != nil {
			return err
		}
		ws = append(ws, proc{cmd, out})
	}
	began := time.Now()
	for i, w := range ws {
		if err := w.cmd.Wait(); err != nil {
			return fmt.Errorf("writer %d: %v", i, err)
		}
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return err
	}
	reads, torn, lo, hi := 0, 0, -1, -1
	for i, r := range rs {
		if err := r.cmd.Wait(); err != nil {
			return fmt.Errorf("reader %d: %v", i, err)
		}
		var n, t, l, h int
		if _, err := fmt.Sscanf(r.out.String(), "reads %d torn %d versions %d %d", &n, &t, &l, &h); err != nil {
			return fmt.Errorf("reader %d said %q: %v", i, r.out.String(), err)
		}
		reads, torn = reads+n, torn+t
		if l >= 0 && (lo < 0 || l < lo) {
			lo = l
		}
		hi = max(hi, h)
	}
	elapsed := time.Since(began)

	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	final, ferr := check(b)
	want := *writers * *updates
	fmt.Printf("\nreads:          %d by %d readers, versions %d to %d seen\n", reads, *readers, lo, hi)
	fmt.Printf("half written:   %d of those reads\n", torn)
	fmt.Printf("final version:  %d, after %d updates (%d lost)\n", final, want, want-final)
	fmt.Printf("took:           %v\n", elapsed.Round(time.Millisecond))
	switch {
	case *unlocked:
		fmt.Println("(without locks: any torn reads or lost updates above are what the locks prevent)")
		return nil
	case ferr != nil:
		return fmt.Errorf("FAILED: the data file is %v", ferr)
	case torn != 0 || final != want:
		return errors.New("FAILED: readers saw half-written data, or updates were lost")
	case hi != want:
		return fmt.Errorf("FAILED: readers' last read saw version %d, not the final %d", hi, want)
	}
	fmt.Println("ok: no reader saw the file half written, and no update was lost")
	return nil
}
