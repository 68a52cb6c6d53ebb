package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// TestREADME keeps every command in README.md working. It reads the README
// and covers each command where it appears.
//
// Fenced sh blocks are covered by the section (level-2 heading) they are
// in; a block in a section with no rule fails the test, so that a new block
// gets a rule:
//
//   - "Quick start": must be exactly go run ./examples/jobqueue and
//     go test -race ./... && go -C internal/faultfstest test -race ./...
//     (the fault-injection tests are a nested module) — .ci/run extracts
//     and runs these two lines itself (checked here); TestExamples runs
//     the jobqueue example too.
//   - "In your script": run, as written, as one bash script (set -eu),
//     with /tmp/ replaced by a fresh directory and GOBIN pointing into
//     it: it installs dotlock with go install ./cmd/dotlock and uses it.
//     Its output is checked, and the lock it took must be free at the end.
//     The dotlock it installed is the one used by the checks below.
//   - "Examples": each go run ./examples/NAME line must name an example
//     that TestExamples runs, and every example must be listed.
//   - "The dotlock command": the synopsis. Every option it shows is passed
//     to the form it belongs to followed by --help, which parses the whole
//     command line and exits 0 only if every option is known and its
//     value valid; -c, which comes after the lock path, is run for real.
//   - "Development": the benchmark command, run with -benchtime 1x added
//     (one iteration: the command works, without the benchmark's time).
//
// The rest of the README:
//
//   - Fenced go blocks: one that is a whole program (package main) is built
//     inside this module and run; a fragment has each lockdir./lockfile./semaphore./
//     stale. name it uses checked against the package's source (running
//     fragments is the packages' Example functions' job).
//   - The "From flock to dotlock" table: every dotlock command in it is run
//     with the placeholders filled in (x.lock a path, cmd true, ...) and
//     must succeed; a row saying "refused" must exit 64 (usage).
//   - Inline `dotlock ...` commands anywhere, and option spellings such as
//     `-nE3` or `--nonb` in the dotlock command's section: parsed by dotlock
//     (with --help, as for the synopsis).
//   - Inline `go ...` commands: each must be one of the block commands
//     covered above, or a step of .ci/run (such as go vet).
//   - The `dotlock status --json` field tables: the field names must be
//     exactly those dotlock prints.
//
// Not commands, and not run: the flock column of the flock table (flock's
// own), the sample of dotlock's waiting line, the tables of exit codes.
func TestREADME(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("the README's commands are for a POSIX shell: not on Windows")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to run the README's shell commands:", err)
	}
	root := moduleRoot(t)
	doc := parseREADME(t, filepath.Join(root, "README.md"))

	var blockCommands []string // every command in a sh block, for the inline check
	var script, synopsis []block
	for _, b := range doc.blocks {
		if b.lang == "go" {
			t.Run(fmt.Sprintf("go block at line %d", b.line), func(t *testing.T) {
				t.Parallel()
				checkGoBlock(t, root, b)
			})
		}
		if b.lang != "sh" {
			continue
		}
		for _, c := range commands(b.lines) {
			// A line of commands joined by && counts as each of them too.
			blockCommands = append(blockCommands, c)
			blockCommands = append(blockCommands, strings.Split(c, " && ")...)
		}
		switch b.section() {
		case "Quick start":
			checkQuickStart(t, root, b)
		case "Examples":
			checkExamplesBlock(t, b)
		case "In your script":
			script = append(script, b)
		case "The dotlock command":
			synopsis = append(synopsis, b)
		case "Development":
			t.Run("benchmark command", func(t *testing.T) {
				t.Parallel()
				runBenchCommand(t, root, b)
			})
		default:
			t.Errorf("README.md:%d: a sh block in section %q, which TestREADME does not cover: add a rule", b.line, b.section())
		}
	}
	if len(script) != 1 || len(synopsis) != 1 {
		t.Fatalf(`README: %d sh blocks under "In your script" and %d under "The dotlock command", want one each`, len(script), len(synopsis))
	}
	t.Run("dotlock", func(t *testing.T) {
		t.Parallel()
		dotlock := runScriptBlock(t, root, script[0], doc) // installs dotlock
		checkSynopsis(t, dotlock, synopsis[0])
		checkFlockTable(t, dotlock, doc)
		checkInline(t, root, dotlock, doc, blockCommands)
	})
}

// readme is README.md in pieces.
type readme struct {
	blocks []block
	spans  []span
	tables []tableRow
}

// block is a fenced code block.
type block struct {
	headings []string // the headings it is under, outermost first
	lang     string
	line     int
	lines    []string
}

// section is the level-2 heading a block is under.
func (b block) section() string { return sectionOf(b.headings) }

func sectionOf(headings []string) string {
	if len(headings) == 0 {
		return ""
	}
	return headings[0]
}

// span is inline code in running text or a table.
type span struct {
	headings []string
	line     int
	text     string
}

// tableRow is one row of a table, as its cells' raw text.
type tableRow struct {
	headings []string
	line     int
	table    int // which table of the README: rows of one table share it
	cells    []string
}

var spanRE = regexp.MustCompile("`([^`]+)`")

func parseREADME(t *testing.T, path string) readme {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc readme
	var headings []string // [level-2, level-3, ...]
	var cur *block
	tables, inTable := 0, false
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if inTable && !strings.HasPrefix(line, "|") {
			inTable = false
		}
		if cur != nil {
			if strings.HasPrefix(line, "```") {
				doc.blocks = append(doc.blocks, *cur)
				cur = nil
			} else {
				cur.lines = append(cur.lines, line)
			}
			continue
		}
		switch {
		case strings.HasPrefix(line, "```"):
			cur = &block{headings: slices.Clone(headings), lang: strings.TrimSpace(line[3:]), line: n}
			continue
		case strings.HasPrefix(line, "## "):
			headings = []string{strings.TrimSpace(line[3:])}
			continue
		case strings.HasPrefix(line, "### "):
			headings = append(headings[:min(len(headings), 1)], strings.TrimSpace(line[4:]))
			continue
		case strings.HasPrefix(line, "|"):
			if !inTable {
				tables, inTable = tables+1, true
			}
			doc.tables = append(doc.tables, tableRow{slices.Clone(headings), n, tables, splitRow(line)})
		}
		for _, m := range spanRE.FindAllStringSubmatch(line, -1) {
			doc.spans = append(doc.spans, span{slices.Clone(headings), n, m[1]})
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: code block never closed", cur.line)
	}
	return doc
}

// splitRow splits a table row on its unescaped bars.
func splitRow(line string) []string {
	var cells []string
	var b strings.Builder
	for i := 1; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			b.WriteString(`\|`)
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(line[i])
		}
	}
	return cells
}

// commands are a block's command lines, with comments and blank lines
// dropped as .ci/run drops them.
func commands(lines []string) []string {
	comment := regexp.MustCompile(`\s*#.*$`)
	var out []string
	for _, l := range lines {
		if c := strings.TrimSpace(comment.ReplaceAllString(l, "")); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// checkQuickStart: the two commands; .ci/run runs exactly these.
func checkQuickStart(t *testing.T, root string, b block) {
	t.Helper()
	want := []string{"go run ./examples/jobqueue", "go test -race ./... && go -C internal/faultfstest test -race ./..."}
	if got := commands(b.lines); !slices.Equal(got, want) {
		t.Errorf("README.md:%d: quick start commands %q, want exactly %q (the newcomer's two commands, run by .ci/run)", b.line, got, want)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"/^## Quick start/", `bash -c "$cmd"`} {
		if !bytes.Contains(ci, []byte(w)) {
			t.Errorf(".ci/run no longer extracts and runs the quick start (lacks %q)", w)
		}
	}
}

// runScriptBlock runs the "In your script" block and returns the dotlock
// it installed.
func runScriptBlock(t *testing.T, root string, b block, doc readme) string {
	t.Helper()
	tmp := testdir.New(t)
	bin := filepath.Join(tmp, "bin")
	script := "set -eu\n" +
		`trap 'echo "README command failed (exit $?): $BASH_COMMAND" >&2' ERR` + "\n" +
		strings.ReplaceAll(strings.Join(b.lines, "\n"), "/tmp/", tmp+"/") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", writeScript(t, script))
	cmd.Dir = root
	cmd.Env = append(without(os.Environ(), "GOBIN=", "PATH=", "DOTLOCK_PATH=", "DOTLOCK_TOKEN="),
		"GOBIN="+bin, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	dotlock := filepath.Join(bin, "dotlock")
	if err != nil {
		t.Errorf("README.md:%d: the %q block failed: %v\n%s", b.line, b.section(), err, out)
		if _, err := os.Stat(dotlock); err != nil {
			t.Fatalf("and it installed no dotlock for the remaining checks: %v", err)
		}
		return dotlock
	}
	for _, w := range []string{
		"one at a time",
		"dotlock owner record v1",
		"held, exit status 1",
		"demo.lock.dotlock: held by pid",
		"readers share it",
	} {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("README.md:%d: the %q block's output lacks %q:\n%s", b.line, b.section(), w, out)
		}
	}
	st := statusJSON(t, dotlock, filepath.Join(tmp, "demo.lock"))
	if st["held"] != false {
		t.Errorf("README.md:%d: after the block, demo.lock is still held: %v", b.line, st)
	}
	checkStatusFields(t, dotlock, tmp, doc)
	return dotlock
}

// statusJSON runs dotlock status --json (exit 0 held, 1 free).
func statusJSON(t *testing.T, dotlock, lock string) map[string]any {
	t.Helper()
	out, err := exec.Command(dotlock, "--status", "--json", lock).Output()
	if c := exitCode(err); c != 0 && c != 1 {
		t.Fatalf("dotlock status --json %s: %v", lock, err)
	}
	var st map[string]any
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("dotlock status --json %s: %q: %v", lock, out, err)
	}
	return st
}

// checkStatusFields compares the README's status --json tables (the
// lock's fields, then each holder's) with what dotlock prints for a held
// lock.
func checkStatusFields(t *testing.T, dotlock, dir string, doc readme) {
	t.Helper()
	fields := map[int][]string{} // by table
	var order []int
	for _, r := range doc.tables {
		if len(r.headings) < 2 || r.headings[1] != "`dotlock status --json`" || len(r.cells) < 2 {
			continue
		}
		if !slices.Contains(order, r.table) {
			order = append(order, r.table)
		}
		for _, m := range spanRE.FindAllStringSubmatch(r.cells[0], -1) {
			fields[r.table] = append(fields[r.table], m[1])
		}
	}
	if len(order) != 2 {
		t.Fatalf("README: %d tables under `dotlock status --json`, want 2 (the lock's fields, a holder's)", len(order))
	}
	// Hold a lock for this test process: dotlock lock returns once it is held.
	lock := filepath.Join(dir, "fields.lock")
	pid := fmt.Sprint(os.Getpid())
	if out, err := exec.Command(dotlock, "--lock", "--pid", pid, lock).CombinedOutput(); err != nil {
		t.Fatalf("dotlock lock --pid %s %s: %v\n%s", pid, lock, err, out)
	}
	st := statusJSON(t, dotlock, lock)
	if out, err := exec.Command(dotlock, "-u", "--pid", pid, lock).CombinedOutput(); err != nil {
		t.Errorf("dotlock unlock --pid %s %s: %v\n%s", pid, lock, err, out)
	}
	holders, _ := st["holders"].([]any)
	if len(holders) != 1 {
		t.Fatalf("status --json of a held lock: holders %v", st["holders"])
	}
	h, _ := holders[0].(map[string]any)
	same := func(what string, documented []string, printed map[string]any) {
		var keys []string
		for k := range printed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		doc := slices.Clone(documented)
		slices.Sort(doc)
		if !slices.Equal(doc, keys) {
			t.Errorf("README's status --json %s fields %v; dotlock prints %v", what, doc, keys)
		}
	}
	same("lock", fields[order[0]], st)
	same("holder", fields[order[1]], h)
}

// checkExamplesBlock: each go run ./examples/NAME is run by TestExamples.
func checkExamplesBlock(t *testing.T, b block) {
	t.Helper()
	listed := map[string]bool{}
	for _, c := range commands(b.lines) {
		name, ok := strings.CutPrefix(c, "go run ./examples/")
		if !ok {
			t.Errorf("README.md:%d: %q in the examples block is not go run ./examples/NAME", b.line, c)
			continue
		}
		listed[name] = true
		known := false
		for _, e := range examples {
			known = known || e.name == name
		}
		if !known {
			t.Errorf("README.md:%d: %q: no such example in TestExamples", b.line, c)
		}
	}
	for _, e := range examples {
		if !listed[e.name] {
			t.Errorf("README.md:%d: the examples block does not list examples/%s", b.line, e.name)
		}
	}
}

// optionValues are values for the options that take one, and for the
// placeholders the README writes instead of values.
var optionValues = map[string]string{
	"-w": "2.5", "--timeout": "2.5", "--wait": "2.5",
	"-E": "3", "--conflict-exit-code": "3",
	"--stale-after": "30s", "--pid": "1", "--mode": "0660",
	"--fd": "3", "--start": "1", "--length": "2", "--slots": "3",
	"SECS": "2.5", "N": "3", "DUR": "30s", "PID": "1", "$$": "1",
}

var optionRE = regexp.MustCompile(`(?:^|[\s,(\[])(--?[A-Za-z][A-Za-z0-9-]*)`)

// checkSynopsis: every option the synopsis shows is known to its form.
func checkSynopsis(t *testing.T, dotlock string, b block) {
	t.Helper()
	checked := 0
	for _, line := range b.lines {
		trimmed := strings.TrimSpace(line)
		forms := []string{"", "--lock"} // the option lines: the main form's, which --lock takes too
		if rest, ok := strings.CutPrefix(trimmed, "dotlock "); ok {
			forms = []string{""}
			for _, sub := range []string{"--status", "--break", "--lock"} {
				if strings.HasPrefix(rest, sub+" ") {
					forms = []string{sub}
				}
			}
		} else if strings.HasPrefix(trimmed, "#") {
			continue
		}
		for _, m := range optionRE.FindAllStringSubmatch(line, -1) {
			opt := m[1]
			for _, form := range forms {
				if opt == form {
					continue // the operation's own option
				}
				checked++
				if form == "" && (opt == "-c" || opt == "--command") {
					// After the lock path: run it.
					lock := filepath.Join(testdir.New(t), "c.lock")
					if out, err := exec.Command(dotlock, lock, opt, "true").CombinedOutput(); err != nil {
						t.Errorf("README.md:%d: dotlock LOCK %s true: %v\n%s", b.line, opt, err, out)
					}
					continue
				}
				args := []string{opt}
				if v, ok := optionValues[opt]; ok {
					args = append(args, v)
				}
				checkParses(t, dotlock, form, args, fmt.Sprintf("README.md:%d (synopsis)", b.line))
			}
		}
	}
	if checked < 20 {
		t.Errorf("README.md:%d: only %d options found in the synopsis: is the block still the synopsis?", b.line, checked)
	}
}

// checkParses runs dotlock [form] --help args: it parses every option in
// args and exits 0 only if all are known and valid (64 otherwise), without
// taking any lock.
func checkParses(t *testing.T, dotlock, form string, args []string, where string) {
	t.Helper()
	argv := []string{}
	if form != "" {
		argv = append(argv, form)
	}
	argv = append(append(argv, "--help"), args...)
	out, err := exec.Command(dotlock, argv...).CombinedOutput()
	if err != nil {
		t.Errorf("%s: dotlock %s: %v (not accepted)\n%s", where, strings.Join(argv, " "), err, lastLine(out))
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// runBenchCommand runs the Development block's benchmark command once.
func runBenchCommand(t *testing.T, root string, b block) {
	t.Helper()
	for _, c := range commands(b.lines) {
		if !strings.HasPrefix(c, "go test ") || !strings.Contains(c, "-bench") {
			t.Errorf("README.md:%d: %q: no rule for this command in the Development block", b.line, c)
			continue
		}
		script := strings.Replace(c, "go test ", "go test -benchtime 1x ", 1)
		ctx, cancel := context.WithTimeout(context.Background(), runLimit)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("README.md:%d: %s: %v\n%s", b.line, script, err, out)
		} else if !bytes.Contains(out, []byte("BenchmarkLockUnlock")) {
			t.Errorf("README.md:%d: %s ran no benchmark:\n%s", b.line, script, out)
		}
	}
}

// checkGoBlock builds and runs a whole program; checks a fragment's names.
func checkGoBlock(t *testing.T, root string, b block) {
	t.Helper()
	src := strings.Join(b.lines, "\n") + "\n"
	if strings.HasPrefix(src, "package main\n") {
		// Build it as if it were a package of this module (an overlay: no
		// file is written into the checkout).
		tmp := testdir.New(t)
		file := filepath.Join(tmp, "main.go")
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		virtual := filepath.Join(root, "examples", "internal", fmt.Sprintf("readme%d", b.line), "main.go")
		overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{virtual: file}})
		ovFile := filepath.Join(tmp, "overlay.json")
		if err := os.WriteFile(ovFile, overlay, 0o644); err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(tmp, "prog")
		if out, err := goCommand(t, root, "build", "-overlay", ovFile, "-o", exe, "./"+filepath.ToSlash(mustRel(t, root, filepath.Dir(virtual)))).CombinedOutput(); err != nil {
			t.Fatalf("README.md:%d: the Go program does not build: %v\n%s", b.line, err, out)
		}
		run := exec.Command(exe)
		run.Env = append(without(os.Environ(), "TMPDIR="), "TMPDIR="+tmp)
		out, err := run.CombinedOutput()
		if err != nil {
			t.Fatalf("README.md:%d: the Go program: %v\n%s", b.line, err, out)
		}
		if !regexp.MustCompile(`^holding .*report\.lock with fencing token 1\n$`).Match(out) {
			t.Errorf("README.md:%d: the Go program printed %q", b.line, out)
		}
		return
	}
	// A fragment: every exported name it takes from our packages must exist.
	names := regexp.MustCompile(`\b(lockfile|lockdir|stale|semaphore)\.([A-Z]\w*)`).FindAllStringSubmatch(src, -1)
	if len(names) == 0 {
		t.Errorf("README.md:%d: a Go fragment that uses none of lockfile, lockdir, stale, semaphore: add a rule", b.line)
	}
	for _, m := range names {
		if !packageHas(t, filepath.Join(root, m[1]), m[2]) {
			t.Errorf("README.md:%d: %s.%s: no such name in package %s", b.line, m[1], m[2], m[1])
		}
	}
}

func mustRel(t *testing.T, base, path string) string {
	t.Helper()
	rel, err := filepath.Rel(base, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// packageHas reports whether the package in dir declares name at top level.
func packageHas(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == name {
					return true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.Name == name {
							return true
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.Name == name {
								return true
							}
						}
					}
				}
			}
		}
	}
	return false
}

// writeScript writes a shell script to a file, to be run as a script is
// run (bash FILE) rather than with bash -c, which runs the last command in
// its own process: a dotlock unlock last in bash -c would be the very
// process that dotlock lock took the lock for, not a child of it.
func writeScript(t *testing.T, script string) string {
	t.Helper()
	f := filepath.Join(testdir.New(t), "readme.sh")
	if err := os.WriteFile(f, []byte(script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// fillPlaceholders makes a README command line runnable in a directory of
// its own: a command of true (or echo, given args), a shell command that
// succeeds, and ... as a no-op.
func fillPlaceholders(s string) string {
	return strings.NewReplacer(
		`\|`, "|",
		" cmd args", " echo args",
		" cmd", " true",
		"'a && b'", "'true && true'",
		"...", ":",
	).Replace(s)
}

// checkFlockTable runs the dotlock column of "From flock to dotlock".
func checkFlockTable(t *testing.T, dotlock string, doc readme) {
	t.Helper()
	rows := 0
	for _, r := range doc.tables {
		if len(r.headings) < 2 || r.headings[1] != "From flock to dotlock" || len(r.cells) != 2 ||
			r.cells[0] == "flock" || strings.HasPrefix(r.cells[0], "---") {
			continue
		}
		rows++
		var runs []string
		want := 0
		if strings.HasPrefix(r.cells[1], "refused") {
			// The flock command, with dotlock: refused as a usage error.
			for _, m := range spanRE.FindAllStringSubmatch(r.cells[0], -1) {
				runs = append(runs, "dotlock"+strings.TrimPrefix(m[1], "flock"))
			}
			want = 64
		} else {
			for _, m := range spanRE.FindAllStringSubmatch(r.cells[1], -1) {
				if strings.HasPrefix(m[1], "dotlock ") {
					runs = append(runs, m[1])
				}
			}
		}
		for _, c := range runs {
			dir := testdir.New(t)
			script := fillPlaceholders(c)
			cmd := exec.Command("bash", writeScript(t, script))
			cmd.Dir = dir
			cmd.Env = append(without(os.Environ(), "PATH="), "PATH="+filepath.Dir(dotlock)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if got := exitCode(err); got != want {
				t.Errorf("README.md:%d: %q (run as %q): exit status %d, want %d\n%s", r.line, c, script, got, want, out)
			}
		}
	}
	if rows < 5 {
		t.Errorf("README: the flock table has %d rows: is it still under \"From flock to dotlock\"?", rows)
	}
}

// checkInline: inline dotlock commands and option spellings parse; inline
// go commands are block commands covered above.
func checkInline(t *testing.T, root, dotlock string, doc readme, blockCommands []string) {
	t.Helper()
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.spans {
		where := fmt.Sprintf("README.md:%d", s.line)
		switch {
		case strings.HasPrefix(s.text, "go "):
			if !slices.Contains(blockCommands, s.text) && !bytes.Contains(ci, []byte(s.text+" ")) {
				t.Errorf("%s: `%s` is neither one of the commands in the README's sh blocks nor a step of .ci/run", where, s.text)
			}
		case strings.HasPrefix(s.text, "dotlock "):
			// Each command of a list such as `dotlock lock -n x.lock || exit 1; ...`.
			for _, c := range regexp.MustCompile(`\\\|\\\||\|\||;`).Split(s.text, -1) {
				f := strings.Fields(strings.TrimSpace(c))
				if len(f) == 0 || f[0] != "dotlock" {
					continue
				}
				form := ""
				if len(f) > 1 && slices.Contains([]string{"--status", "--break", "--lock"}, f[1]) {
					form, f = f[1], f[1:]
				}
				checkParses(t, dotlock, form, fillValues(f[1:]), where)
			}
		case sectionOf(s.headings) == "The dotlock command" && strings.HasPrefix(s.text, "-"):
			// An option spelling: accepted by at least one form.
			args := fillValues(strings.Fields(s.text))
			ok := false
			for _, form := range []string{"", "--status", "--break", "--lock"} {
				argv := append([]string{form, "--help"}, args...)
				if form == "" {
					argv = argv[1:]
				}
				if exec.Command(dotlock, argv...).Run() == nil {
					ok = true
					break
				}
			}
			if !ok {
				t.Errorf("%s: `%s`: no form of dotlock accepts it", where, s.text)
			}
		}
	}
}

// fillValues replaces placeholders, and gives a value to an option that
// needs one and is written without.
func fillValues(args []string) []string {
	var out []string
	for i, a := range args {
		if v, ok := optionValues[a]; ok && !strings.HasPrefix(a, "-") {
			a = v
		}
		out = append(out, a)
		if v, ok := optionValues[a]; ok && strings.HasPrefix(a, "-") && i == len(args)-1 {
			out = append(out, v)
		}
	}
	return out
}
