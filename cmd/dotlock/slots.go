package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dotlock/dotlock/semaphore"
)

// semaphoreStatus prints the status of a semaphore's directory (--slots):
// a line for the semaphore, then each slot's status as a lock's (with
// --json, a line of JSON for each slot, as for a lock). It returns 0 if a
// slot is held, 1 if none is, and false if dir is no semaphore's.
func semaphoreStatus(path string, asJSON bool, stdout, stderr *os.File) (int, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, false
	}
	n, err := semaphore.SizeOf(abs)
	if err != nil {
		return 0, false
	}
	now := time.Now()
	held := 0
	var lines []func()
	for i := range n {
		h, err := openHandle(filepath.Join(abs, "slot."+strconv.Itoa(i)), formatFile, nil)
		if err != nil {
			return fail(stderr, errorCode(err), "%v", err), true
		}
		st, err := h.status()
		if err != nil {
			return fail(stderr, errorCode(err), "%v", err), true
		}
		if st.Held {
			held++
		}
		if asJSON {
			b, _ := json.Marshal(toJSON(h, st, now))
			lines = append(lines, func() { stdout.Write(append(escapeJSON(b), '\n')) })
		} else {
			lines = append(lines, func() { printStatus(stdout, h, st, now) })
		}
	}
	if !asJSON {
		printLine(stdout, "%s: semaphore of %d slots, %d held", abs, n, held)
	}
	for _, l := range lines {
		l()
	}
	if held == 0 {
		return 1, true
	}
	return 0, true
}
