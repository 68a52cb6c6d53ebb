package stale_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/dotlock/dotlock/stale"
)

func ExampleParse() {
	at := time.Date(2024, 3, 1, 12, 0, 0, 500, time.UTC)
	rec := stale.Owner{
		UUID:     "0b7e5c1a-3f0e-4f51-9a59-6c1d2b9f4e11",
		Token:    42,
		Mode:     stale.ModeExclusive,
		PID:      4242,
		Host:     "build-7",
		BootID:   "5d8f2c0e-8a3b-4b44-9f7e-1c2d3e4f5a6b",
		PIDNS:    "pid:[4026531836]",
		StartID:  "1234567",
		Started:  at.Add(-time.Hour),
		Acquired: at,
		Beat:     3,
		BeatTime: at.Add(3 * time.Second),
	}.Marshal()
	for _, line := range strings.SplitAfter(string(rec), "\n") {
		if !strings.HasPrefix(line, "pad:") { // spaces that give every record one size
			fmt.Print(line)
		}
	}

	o, err := stale.Parse(rec)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version:", o.Version)
	fmt.Println("holder: pid", o.PID, "on", o.Host, "token", o.Token, o.Mode)
	fmt.Println("acquired:", o.Acquired.Format(time.RFC3339Nano))
	fmt.Println("beat:", o.Beat, "at", o.BeatTime.Format(time.RFC3339))

	_, err = stale.Parse(rec[:len(rec)-1])
	fmt.Println(err)
	// Output:
	// dotlock owner record v1
	// uuid: 0b7e5c1a-3f0e-4f51-9a59-6c1d2b9f4e11
	// token: 00000000000000000042
	// mode: exclusive
	// pid: 4242
	// host: build-7
	// boot: 5d8f2c0e-8a3b-4b44-9f7e-1c2d3e4f5a6b
	// pidns: pid:[4026531836]
	// startid: 1234567
	// started: 2024-03-01T11:00:00.000000500Z
	// acquired: 2024-03-01T12:00:00.000000500Z
	// heartbeat: 00000000000000000003 2024-03-01T12:00:03.000000500Z
	// end
	// version: 1
	// holder: pid 4242 on build-7 token 42 exclusive
	// acquired: 2024-03-01T12:00:00.0000005Z
	// beat: 3 at 2024-03-01T12:00:03Z
	// owner record: partial (no final newline)
}
