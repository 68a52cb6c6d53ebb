package main

// util-linux's own flock tests (tests/ts/flock: flock, close, unlock,
// range-lock; expected outputs in tests/expected/flock), ported: each case
// runs against the built dotlock and, as a control, /usr/bin/flock, where
// that flock has the options the case needs. The holder the originals keep
// for "sleep 3" is held here until the case releases it (a FIFO).

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

type portCase struct {
	name    string
	needs   []string // flock options the case uses (a flock without them skips it)
	script  string   // bash; $FLOCK is the command under test
	stdout  string   // expected, normalized
	stderr  string   // expected, normalized; "" is not compared
	differs string   // dotlock: the difference README's "From flock to dotlock" lists
}

// flockPrelude is tests/ts/flock/flock's setup: a shared holder of
// lockfile (until release is written), and do_lock.
const flockPrelude = `
do_lock() {
	$FLOCK $1 lockfile echo "$3" 2>>errlog
	local rc=$?
	if [ "$rc" == "$2" ]; then echo Success; else echo "Failed [rc=$rc]"; fi
}
mkfifo release
$FLOCK $API --shared lockfile bash -c "echo 'API: $APINAME(2)'; echo Locking; read x < release; sleep ${HOLD:-0}; echo Unlocking" >> general 2>&1 &
holder=$!
for i in $(seq 2000); do grep -q Locking general 2>/dev/null && break; sleep 0.01; done
grep -q Locking general || { echo "the holder did not start"; exit 1; }
`

const flockTeardown = `
[ -e released ] || echo > release
wait $holder
echo Unlocked >> general
`

// timeoutBody waits (-w 5) for the holder, which holds 1 s more once
// released: the waiter's wait is what time-check measures.
const timeoutBody = `
start=$EPOCHREALTIME
do_lock "$API --timeout 5 --conflict-exit-code 5" 0 "After timeout." > waiter &
w=$!
echo > release; touch released
wait $w
end=$EPOCHREALTIME
`

func flockCases(api string) []portCase {
	arg, prefix, name := "", "", "flock"
	var needs []string
	if api == "fcntl" {
		arg, prefix, name, needs = "--fcntl", "fcntl-", "fcntl", []string{"--fcntl"}
	}
	env := fmt.Sprintf("API=%q APINAME=%s\n", arg, name)
	c := func(n, body, out string) portCase {
		hold := "" // the timeout cases' holder holds 1 s once released
		if strings.HasPrefix(body, timeoutBody) {
			hold = "HOLD=1\n"
		}
		return portCase{name: prefix + n, needs: needs, script: env + hold + flockPrelude + body + flockTeardown, stdout: out}
	}
	cases := []portCase{
		c("general", "", ""), // its output is general's, below
		c("non-block", `do_lock "$API --nonblocking --conflict-exit-code 123" 123 "You will never see this!"`, "Success\n"),
		c("no-fork", `do_lock "$API --no-fork --nonblocking --conflict-exit-code 123" 123 "You will never see this!"`, "Success\n"),
		c("shared", `do_lock "$API --shared" 0 "Have shared lock"`, "Have shared lock\nSuccess\n"),
		c("exclusive", `do_lock "$API --nb --exclusive --conflict-exit-code 123" 123 "You will never see this!"`, "Success\n"),
		c("fd", `exec 4<>lockfile || echo "Could not open lockfile"
$FLOCK $API --nonblocking --exclusive --conflict-exit-code 123 4 2>>errlog
rc=$?
if [ "$rc" == 123 ]; then echo Success; else echo "Failed [rc=$rc]"; fi
[ -f 4 ] && echo "fd file should not exist"`, "Success\n"),
		c("timeout", timeoutBody+`cat waiter`, "After timeout.\nSuccess\n"),
		c("time-check", timeoutBody+`
d=$(( ${end/./} / 1000000 - ${start/./} / 1000000 ))
if [ $d -lt 1 ]; then echo "general lock failed [$d sec]"; elif [ $d -gt 5 ]; then echo "wait too long [$d sec]"; else echo success; fi`, "success\n"),
	}
	cases[0].script += "cat general\n"
	cases[0].stdout = fmt.Sprintf("API: %s(2)\nLocking\nUnlocking\nUnlocked\n", name)
	if api == "fcntl" {
		// fcntl locks are independent of flock locks.
		cases = append(cases, portCase{name: "fcntl-vs-flock", needs: needs,
			script: env + flockPrelude + `do_lock "--nonblock --exclusive" 0 "flock vs fcntl"` + flockTeardown,
			stdout: "flock vs fcntl\nSuccess\n", differs: "--fcntl takes the same lock as flock's default"})
	}
	return cases
}

var portCases = append(append(flockCases("flock"), flockCases("fcntl")...),
	portCase{name: "close", needs: []string{"--fd 1", "--close"},
		script: `exec 10<>lock
$FLOCK --exclusive --close --fd 10 --command "$FLOCK --exclusive --nonblock --fd 10 true"
echo "exit code: $?"
$FLOCK --exclusive --fd 10 --command "$FLOCK --exclusive --nonblock --fd 10 true"
echo "exit code: $?"`,
		stdout: "exit code: 65\nexit code: 0\n", stderr: "flock: 10: EBADF\n"},
	portCase{name: "unlock", needs: []string{"--unlock", "--verbose"},
		script: `exec 10<>lock
$FLOCK --exclusive --nonblock --verbose 10
$FLOCK --unlock 10
$FLOCK --exclusive --wait 0 --verbose lock true`,
		stdout: "flock: getting lock took <n> seconds\nflock: getting lock took <n> seconds\nflock: executing true\n"},
	portCase{name: "range-lock", needs: []string{"--fcntl", "--start 1", "--length 2"},
		script: `coproc FLOCK_P { $FLOCK --shared --fcntl --start 1 --length 2 --no-fork . -c cat & echo $!; wait; }
read -r -u "${FLOCK_P[0]}" PID || { echo "failed in read" >&2; exit 1; }
echo start: 1 == "$(lslocks --noheadings --raw --pid "$PID" -o START)"
echo end: 2 == "$(lslocks --noheadings --raw --pid "$PID" -o END)"
exec {FLOCK_P[1]}>&-
wait`,
		stdout: "start: 1 == 1\nend: 2 == 2\n", differs: "byte-range locks (--start, --length) are refused"},
)

var (
	tookRE   = regexp.MustCompile(`(flock.*took) [0-9]+\.[0-9]+ (seconds)`)
	prefixRE = regexp.MustCompile(`(?m)^(/usr/bin/flock|[^ ]*dotlock):`)
)

// normalize makes dotlock's output and flock's comparable, as the
// originals' sed lines do.
func normalize(s string) string {
	s = prefixRE.ReplaceAllString(s, "flock:")
	s = tookRE.ReplaceAllString(s, "$1 <n> $2")
	return strings.ReplaceAll(s, "Bad file descriptor", "EBADF")
}

// flockLacks is the first of opts that this flock does not know.
func flockLacks(flock string, opts []string) string {
	for _, o := range opts {
		args := append(strings.Fields(o), "--help")
		if exec.Command(flock, args...).Run() != nil {
			return o
		}
	}
	return ""
}

func TestUtilLinuxFlockSuite(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	impls := []struct{ name, bin string }{{"dotlock", dotlockBin}, {"flock", "/usr/bin/flock"}}
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			if _, err := os.Stat(im.bin); err != nil {
				t.Skipf("%s: %v", im.bin, err)
			}
			version, _ := exec.Command(im.bin, "--version").Output()
			for _, c := range portCases {
				t.Run(c.name, func(t *testing.T) {
					if im.name == "flock" {
						if o := flockLacks(im.bin, c.needs); o != "" {
							t.Skipf("%s lacks %s", strings.TrimSpace(string(version)), o)
						}
					} else if c.differs != "" {
						t.Skipf("differs from flock (README, From flock to dotlock): %s", c.differs)
					}
					t.Parallel()
					runPortCase(t, im.bin, c)
				})
			}
		})
	}
}

func runPortCase(t *testing.T, bin string, c portCase) {
	dir := testdir.New(t)
	r := bash(t, dir, "FLOCK="+bin+"\n"+c.script)
	if got := normalize(r.stdout); got != c.stdout {
		t.Errorf("stdout %q, want %q (exit %d, stderr %q)", got, c.stdout, r.code, r.stderr)
	}
	if got := normalize(r.stderr); c.stderr != "" && got != c.stderr {
		t.Errorf("stderr %q, want %q", got, c.stderr)
	}
}
