package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A hand-written getopt, as flock(1)'s: combined short options (-nx,
// -nE3, -w2.5, -w 2.5), long options with = or a separate argument
// (--timeout=2.5, --timeout 2.5), unambiguous prefixes of long options
// (--nonb), and "--" to end options.

// optSpec is one option.
type optSpec struct {
	id    string   // what the caller switches on
	short string   // short letters ("x", or "xe" for aliases); may be empty
	long  []string // long names
	arg   bool     // takes an argument
	flock bool     // one of flock(1)'s: wins an abbreviation it shares with ours
}

// opt is one option as given.
type opt struct {
	id   string
	name string // as written, for messages ("-w", "--timeout")
	val  string
}

// usageError is a command-line error: one line, exit code 64.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// getopt parses args. With stop, parsing stops at the first non-option
// (which, with what follows, is returned as rest), as flock's "+" does;
// otherwise options and operands may be mixed (operands are returned in
// order). "--" ends options either way.
func getopt(args []string, specs []optSpec, stop bool) (opts []opt, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(rest, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			s, err := findLong(specs, name)
			if err != nil {
				return nil, nil, err
			}
			o := opt{id: s.id, name: "--" + longName(s, name)}
			switch {
			case s.arg && hasVal:
				o.val = val
			case s.arg:
				if i+1 >= len(args) {
					return nil, nil, usagef("option '%s' requires an argument", o.name)
				}
				i++
				o.val = args[i]
			case hasVal:
				return nil, nil, usagef("option '%s' doesn't allow an argument", o.name)
			}
			opts = append(opts, o)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				s := findShort(specs, a[j])
				if s == nil {
					return nil, nil, usagef("invalid option -- '%c'", a[j])
				}
				o := opt{id: s.id, name: "-" + string(a[j])}
				if s.arg {
					if j+1 < len(a) {
						o.val = a[j+1:]
					} else if i+1 < len(args) {
						i++
						o.val = args[i]
					} else {
						return nil, nil, usagef("option requires an argument -- '%c'", a[j])
					}
					opts = append(opts, o)
					break
				}
				opts = append(opts, o)
			}
		default:
			if stop {
				return opts, append(rest, args[i:]...), nil
			}
			rest = append(rest, a)
		}
	}
	return opts, rest, nil
}

func findShort(specs []optSpec, c byte) *optSpec {
	for i := range specs {
		if strings.IndexByte(specs[i].short, c) >= 0 {
			return &specs[i]
		}
	}
	return nil
}

// findLong finds a long option by its name or an unambiguous prefix.
func findLong(specs []optSpec, name string) (*optSpec, error) {
	if name == "" {
		return nil, usagef("unrecognized option '--'")
	}
	var found *optSpec
	var matches []string
	for i := range specs {
		for _, l := range specs[i].long {
			if l == name {
				return &specs[i], nil
			}
			if strings.HasPrefix(l, name) {
				if found != &specs[i] {
					matches = append(matches, "--"+l)
				}
				found = &specs[i]
			}
		}
	}
	if len(matches) > 1 {
		// An abbreviation flock(1) reads as one of its options means that
		// option here too (--sta: flock's --start, not --stale-after).
		if s := flockMatch(specs, name); s != nil {
			return s, nil
		}
	}
	switch {
	case len(matches) == 1:
		return found, nil
	case len(matches) > 1:
		return nil, usagef("option '--%s' is ambiguous; possibilities: %s", name, strings.Join(matches, " "))
	}
	return nil, usagef("unrecognized option '--%s'", name)
}

// flockMatch is the one flock option that name abbreviates, if one.
func flockMatch(specs []optSpec, name string) *optSpec {
	var found *optSpec
	for i := range specs {
		if !specs[i].flock {
			continue
		}
		for _, l := range specs[i].long {
			if strings.HasPrefix(l, name) {
				if found != nil && found != &specs[i] {
					return nil
				}
				found = &specs[i]
			}
		}
	}
	return found
}

// longName is the full long name that prefix abbreviates.
func longName(s *optSpec, prefix string) string {
	for _, l := range s.long {
		if l == prefix {
			return l
		}
	}
	for _, l := range s.long {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return prefix
}

// parseSeconds reads a timeout: seconds, fractional allowed ("2.5"), or a
// Go duration ("1m30s"). Negative, NaN and absurd values are refused.
func parseSeconds(name, v string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e9 {
			return 0, usagef("invalid timeout value '%s' for %s (seconds, 0 or more)", v, name)
		}
		d = time.Duration(f * float64(time.Second))
	} else if pd, err := time.ParseDuration(v); err == nil && pd >= 0 {
		d = pd
	} else {
		return 0, usagef("invalid timeout value '%s' for %s (seconds, such as 2.5, or a duration, such as 1m30s)", v, name)
	}
	return d, nil
}

// parseLease reads --stale-after: a Go duration ("30s", "2m") or seconds.
func parseLease(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e9 {
			return 0, usagef("invalid duration '%s' for %s (such as 30s, 2m, or seconds)", v, name)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 {
		return 0, usagef("invalid duration '%s' for %s (must be more than 0)", v, name)
	}
	return d, nil
}

// parseExitCode reads -E's argument: 0 to 255, as flock.
func parseExitCode(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, usagef("invalid exit code '%s' for %s", v, name)
	}
	if n < 0 || n > 255 {
		return 0, usagef("exit code out of range for %s (expected 0 to 255): %s", name, v)
	}
	return n, nil
}

// parsePID reads --pid's argument.
func parsePID(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, usagef("invalid pid '%s' for %s", v, name)
	}
	return n, nil
}
