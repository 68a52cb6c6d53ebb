package examples_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotlock/dotlock/internal/testdir"
)

// examples are the example programs, each with lines its output must
// contain: its own final verdict, and the key event of its story. Every
// directory under examples/ must be here (TestExamples checks), so that no
// example goes unrun.
var examples = []struct {
	name string
	want []string
}{
	{"jobqueue", []string{
		"worker killed:    worker",
		"done twice:       0 []",
		"ok: every job done exactly once",
	}},
	{"script", []string{
		"B | nightly: skipped: another run holds",
		"report.lock: held false, last token 2",
		"ok: copy B skipped while A ran",
	}},
	{"rwfile", []string{
		"half written:   0 of those reads",
		"(0 lost)",
		"ok: no reader saw the file half written, and no update was lost",
	}},
	{"licence", []string{
		"worker killed:    w0, in a job, holding slot",
		"reclaimed:        slot",
		"ok: never more than 3 jobs at once",
	}},
	{"fencing", []string{
		"storage says rejected: token 1 is older than 2",
		"holder's Lost() channel is closed",
		"(ErrLost: true)",
		"ok: the paused holder lost its lease, and its late write was rejected by its token",
	}},
}

// notOnWindows: examples that need what Windows lacks.
var notOnWindows = map[string]string{
	"fencing": "the fencing example pauses its holder with SIGSTOP, which Windows does not have",
	"script":  "the script example is a POSIX shell script (nightly.sh)",
	// Open: under Wine 8.0, with two runs at once, 1 run in 36 hung (a
	// reader group held, and the breaker guard held by a live process
	// that did nothing more). With a goroutine added that wakes every 2 s,
	// 50 runs did not hang: a timer wake-up lost under Wine? Not known.
	"rwfile": "the rwfile example hangs about 1 run in 35 under Wine (a process stops making progress; cause not found yet): not run on Windows until it is",
}

// runLimit bounds one example's run: far above what any needs (each takes
// seconds), so that only a hang trips it.
const runLimit = 5 * time.Minute

// TestExamples builds every example and runs it as a user would (go run
// ./examples/NAME), checking its exit status and the key lines of its
// output.
func TestExamples(t *testing.T) {
	t.Parallel()
	// Built beforehand under Wine (.ci/test-windows), which has no go tool.
	prebuilt := os.Getenv("DOTLOCK_TEST_EXAMPLES")
	if runtime.GOOS == "windows" && prebuilt == "" {
		t.Skip("on Windows the examples are run from prebuilt binaries: set DOTLOCK_TEST_EXAMPLES to their directory (.ci/test-windows does)")
	}
	root := moduleRoot(t)
	listed := map[string]bool{}
	for _, ex := range examples {
		listed[ex.name] = true
	}
	dirs, err := os.ReadDir(filepath.Join(root, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(root, "examples", d.Name(), "main.go")); err == nil && !listed[d.Name()] {
			t.Errorf("examples/%s is not run by TestExamples: add it to the examples table", d.Name())
		}
	}

	// One go build for all of them (a main package per directory).
	bin := prebuilt
	if bin == "" {
		bin = testdir.New(t)
		args := []string{"build", "-o", bin + string(filepath.Separator)}
		for _, ex := range examples {
			args = append(args, "./examples/"+ex.name)
		}
		if out, err := goCommand(t, root, args...).CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			if why := notOnWindows[ex.name]; runtime.GOOS == "windows" && why != "" {
				t.Skip(why)
			}
			ctx, cancel := context.WithTimeout(context.Background(), runLimit)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, ex.name))
			cmd.Dir = root // as with go run ./examples/NAME from the root
			// The script example builds dotlock itself when DOTLOCK is
			// unset: that is what a user gets, so test it so.
			cmd.Env = without(os.Environ(), "DOTLOCK=", "DOTLOCK_PATH=", "DOTLOCK_TOKEN=")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("examples/%s did not finish in %v:\n%s", ex.name, runLimit, out.String())
			}
			if err != nil {
				t.Fatalf("examples/%s: %v\n%s", ex.name, err, out.String())
			}
			for _, w := range ex.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("examples/%s: output lacks %q", ex.name, w)
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("examples/%s said:\n%s", ex.name, out.String())
			}
		})
	}
}

// moduleRoot is the repository's root: the tests run in examples/.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

var (
	goOnce sync.Once
	goPath string
	goErr  error
)

// goCommand is the go command, run in dir. go test puts the go command's
// own bin directory first on PATH, so the one found is the one testing.
func goCommand(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	goOnce.Do(func() { goPath, goErr = exec.LookPath("go") })
	if goErr != nil {
		t.Fatalf("the go command is not on PATH: %v", goErr)
	}
	cmd := exec.Command(goPath, args...)
	cmd.Dir = dir
	return cmd
}

// without returns env without the variables that have one of the prefixes.
func without(env []string, prefixes ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// exitCode is a finished command's exit status (-1 if it did not run).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
