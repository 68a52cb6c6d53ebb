// Command script runs nightly.sh, a shell script that uses the dotlock
// command where a script would use flock(1), and shows what its locks do:
//
//	go run ./examples/script
//
// nightly.sh (beside this file) is the part to copy: a cron job that skips
// itself when another run is still going (dotlock -n on the script, re-run
// under the lock), and that publishes its report under a second lock held
// across several commands with `dotlock lock --pid $$` and `dotlock unlock`.
//
// This program builds dotlock (go build ./cmd/dotlock, unless $DOTLOCK
// names one), makes a shared directory in a temporary directory, and runs:
//
//   - copy A of the script, which takes the run lock and is then held in
//     the middle of its work: one of its input files is a named pipe that
//     this program feeds only later;
//   - copy B, started while A runs: it finds the run lock held and skips;
//   - A, fed, finishes: it publishes under the report lock, which `dotlock
//     status` shows held by A's shell (the $$ of `dotlock lock --pid $$`);
//   - copy C, the next night's run: it finds the locks free and runs.
//
// At the end the report lock is free, with the fencing token of the last of
// its two holds: each `dotlock lock --pid $$` was released by its unlock.
package main

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

//go:embed nightly.sh
var nightly []byte

const patience = 2 * time.Minute // a step that takes longer than this is stuck

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "script:", err)
		os.Exit(1)
	}
}

func run() error {
	tmp, err := os.MkdirTemp("", "script-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dotlock, err := findDotlock(tmp)
	if err != nil {
		return err
	}
	script := filepath.Join(tmp, "nightly.sh")
	if err := os.WriteFile(script, nightly, 0o755); err != nil {
		return err
	}
	shared := filepath.Join(tmp, "shared") // on NFS in real life
	if err := os.MkdirAll(filepath.Join(shared, "input"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(shared, "input", "a.txt"), []byte("pear\napple\n"), 0o644); err != nil {
		return err
	}
	// The last input file is a named pipe: the script's sort waits on it
	// until we write it, so copy A is certainly still running while copy B
	// starts. (No sleeps: what happens does not depend on timing.)
	late := filepath.Join(shared, "input", "z-late.txt")
	if err := mkfifo(late); err != nil {
		return err
	}
	defer unblock(late) // on an error path, let a waiting sort go on
	fmt.Printf("nightly.sh %s, dotlock %s\n\n", shared, dotlock)

	// As from cron: not already under a lock.
	env := append(without(os.Environ(), "DOTLOCK_PATH=", "DOTLOCK_TOKEN="), "DOTLOCK="+dotlock)

	// Copy A: start it and wait until it holds the run lock.
	a := exec.Command(script, shared)
	a.Env = env
	a.Stderr = os.Stderr
	aOut, err := a.StdoutPipe()
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	aLines := make(chan string)
	go func() {
		defer close(aLines)
		sc := bufio.NewScanner(aOut)
		for sc.Scan() {
			aLines <- sc.Text()
		}
	}()
	readA := func(want *regexp.Regexp) ([]string, error) {
		for {
			select {
			case line, ok := <-aLines:
				if !ok {
					return nil, fmt.Errorf("copy A ended before printing a line matching %q", want)
				}
				fmt.Println("A |", line)
				if m := want.FindStringSubmatch(line); m != nil {
					return m, nil
				}
			case <-time.After(patience):
				return nil, fmt.Errorf("copy A printed no line matching %q in %v", want, patience)
			}
		}
	}
	m, err := readA(regexp.MustCompile(`^nightly\[(\d+)\]: running under .*nightly\.lock\.dotlock, token (\d+)$`))
	if err != nil {
		return err
	}
	aPID := m[1]
	fmt.Println("  (copy A holds the run lock, and waits for its input)")

	// Copy B, while A runs: it must skip.
	b := exec.Command(script, shared)
	b.Env = env
	bOut, err := b.CombinedOutput()
	printPrefixed("B", bOut)
	if err != nil {
		return fmt.Errorf("copy B: %v", err)
	}
	if !strings.Contains(string(bOut), "nightly: skipped: another run holds") || strings.Contains(string(bOut), "running under") {
		return errors.New("FAILED: copy B did not skip while copy A held the run lock")
	}

	// Feed A's input; it finishes, publishing under the report lock. (Opening
	// the pipe waits for A's sort to open it: do it aside, so that if A has
	// failed instead, we hear of that.)
	fed := make(chan error, 1)
	go func() { fed <- os.WriteFile(late, []byte("quince\nbanana\n"), 0) }()
	if _, err := readA(regexp.MustCompile(`report\.lock\.dotlock: held by pid ` + aPID + ` `)); err != nil {
		return err
	}
	if _, err := readA(regexp.MustCompile(`^nightly\[` + aPID + `\]: published`)); err != nil {
		return err
	}
	for line := range aLines {
		fmt.Println("A |", line)
	}
	if err := <-fed; err != nil {
		return err
	}
	if err := a.Wait(); err != nil {
		return fmt.Errorf("copy A: %v", err)
	}
	summary, err := os.ReadFile(filepath.Join(shared, "report", "summary.txt"))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(summary), "4 lines") {
		return fmt.Errorf("FAILED: the report says %q, want 4 lines", summary)
	}

	// Copy C, the next night: the input is a plain file now.
	if err := os.Remove(late); err != nil {
		return err
	}
	if err := os.WriteFile(late, []byte("fig\n"), 0o644); err != nil {
		return err
	}
	c := exec.Command(script, shared)
	c.Env = env
	cOut, err := c.CombinedOutput()
	printPrefixed("C", cOut)
	if err != nil {
		return fmt.Errorf("copy C: %v", err)
	}
	if !regexp.MustCompile(`running under .*nightly\.lock\.dotlock, token 2\n`).Match(cOut) {
		return errors.New("FAILED: copy C did not run with the run lock's next token")
	}

	// Both locks are free again, each with the last of its two holds' token.
	for _, lock := range []string{"nightly.lock", "report.lock"} {
		st, err := exec.Command(dotlock, "--status", "--json", filepath.Join(shared, lock)).Output()
		var s struct {
			Held      bool   `json:"held"`
			LastToken uint64 `json:"last_token"`
		}
		if jerr := json.Unmarshal(st, &s); jerr != nil {
			return fmt.Errorf("dotlock status --json %s: %q, %v (%v)", lock, st, jerr, err)
		}
		fmt.Printf("\n%s: held %v, last token %d", lock, s.Held, s.LastToken)
		if s.Held || s.LastToken != 2 {
			return fmt.Errorf("FAILED: %s should be free after two holds", lock)
		}
	}
	fmt.Println()
	fmt.Println("\nok: copy B skipped while A ran; A held the report lock for its shell across its publishing steps and released it; C ran the next night")
	return nil
}

// findDotlock returns $DOTLOCK, or builds dotlock into dir.
func findDotlock(dir string) (string, error) {
	if p := os.Getenv("DOTLOCK"); p != "" {
		return filepath.Abs(p)
	}
	exe := filepath.Join(dir, "dotlock")
	out, err := exec.Command("go", "build", "-o", exe, "github.com/dotlock/dotlock/cmd/dotlock").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building dotlock (run this in the checkout, or set DOTLOCK=/path/to/dotlock): %v\n%s", err, out)
	}
	return exe, nil
}

func printPrefixed(who string, out []byte) {
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Println(who, "|", line)
	}
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
