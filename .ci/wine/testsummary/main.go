// Command testsummary reads `go test -json` output on stdin and prints, per
// package and in total, how many tests passed, failed and were skipped, and
// each skipped test with its reason. It exits 1 if any test or package
// failed. .ci/test-windows uses it to show what runs under Wine.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type counts struct{ pass, fail, skip int }

func main() {
	byPkg := map[string]*counts{}
	pkgFailed := map[string]bool{}
	output := map[string][]string{} // package+test -> output lines
	var skipped []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // build errors and the like
			continue
		}
		if e.Action == "build-output" {
			fmt.Print(e.Output)
			continue
		}
		if e.Package == "" {
			continue
		}
		c := byPkg[e.Package]
		if c == nil {
			c = &counts{}
			byPkg[e.Package] = c
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			output[key] = append(output[key], e.Output)
		case "pass":
			if e.Test != "" {
				c.pass++
			}
		case "fail":
			if e.Test != "" {
				c.fail++
			} else {
				pkgFailed[e.Package] = true
			}
			fmt.Printf("--- FAIL %s %s\n%s", short(e.Package), e.Test, strings.Join(output[key], ""))
		case "skip":
			if e.Test != "" {
				c.skip++
				skipped = append(skipped, fmt.Sprintf("%s %s: %s", short(e.Package), e.Test, reason(output[key])))
			}
		}
		if e.Action == "pass" || e.Action == "fail" || e.Action == "skip" {
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}

	sort.Strings(skipped)
	fmt.Printf("\nskipped tests (%d):\n", len(skipped))
	for _, s := range skipped {
		fmt.Println("  " + s)
	}
	pkgs := make([]string, 0, len(byPkg))
	for p := range byPkg {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	var total counts
	fmt.Printf("\n%-40s %6s %6s %6s\n", "package", "pass", "skip", "fail")
	for _, p := range pkgs {
		c := byPkg[p]
		status := ""
		if pkgFailed[p] {
			status = "  FAIL"
		}
		fmt.Printf("%-40s %6d %6d %6d%s\n", short(p), c.pass, c.skip, c.fail, status)
		total.pass += c.pass
		total.skip += c.skip
		total.fail += c.fail
	}
	fmt.Printf("%-40s %6d %6d %6d\n", "total (tests and subtests)", total.pass, total.skip, total.fail)
	fmt.Printf("ran %d, skipped %d\n", total.pass+total.fail, total.skip)
	if total.fail > 0 || len(pkgFailed) > 0 {
		os.Exit(1)
	}
}

func short(pkg string) string { return strings.TrimPrefix(pkg, "github.com/dotlock/dotlock/") }

// reason picks the skip message out of a skipped test's output: the lines
// after its "=== RUN" and before "--- SKIP", joined.
func reason(lines []string) string {
	var r []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		r = append(r, l)
	}
	return strings.Join(r, " | ")
}
