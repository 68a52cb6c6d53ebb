//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dotlock/dotlock/internal/testdir"
)

// --slots N DIR: at most N commands at once under DIR's semaphore; the
// next waits (or, with -n, exits 1); --status lists every slot; a
// different N, a user's directory and options that make no sense with a
// semaphore are refused.
func TestSlots(t *testing.T) {
	dir := testdir.New(t)
	sem := filepath.Join(dir, "licence")
	var holders []*proc
	for i := range 2 {
		p := startDotlock(t, dir, "--slots", "2", sem, "sh", "-c", `echo in $DOTLOCK_TOKEN; read x || true`)
		p.out.wait(t, "holder "+string(rune('A'+i)), "in ")
		holders = append(holders, p)
	}
	dotlock(t, dir, "-n", "--slots", "2", sem, "true").want(t, 1, "-n with both slots held")
	dotlock(t, dir, "-n", "-E", "7", "--slots", "2", sem, "true").want(t, 7, "-n -E 7 with both slots held")
	st := dotlock(t, dir, "--status", sem).want(t, 0, "--status of a full semaphore")
	if !strings.Contains(st.stdout, "semaphore of 2 slots, 2 held") || strings.Count(st.stdout, "held by pid") != 2 {
		t.Errorf("--status of the semaphore:\n%s", st.stdout)
	}
	for _, p := range holders {
		if !strings.Contains(st.stdout, "held by pid "+strconv.Itoa(p.pid())+" ") {
			t.Errorf("--status does not name holder %d:\n%s", p.pid(), st.stdout)
		}
	}
	waiter := startDotlock(t, dir, "--slots", "2", sem, "sh", "-c", "echo in")
	holders[0].closeStdin()
	if code := holders[0].finish(); code != 0 {
		t.Fatalf("first holder: exit %d: %s", code, holders[0].err.text())
	}
	waiter.out.wait(t, "the waiter", "in")
	if code := waiter.finish(); code != 0 {
		t.Fatalf("the waiter: exit %d: %s", code, waiter.err.text())
	}
	holders[1].closeStdin()
	holders[1].finish()
	dotlock(t, dir, "--status", sem).want(t, 1, "--status of a free semaphore")

	dotlock(t, dir, "--slots", "3", sem, "true").want(t, 65, "--slots 3 where 2 are recorded")
	mine := filepath.Join(dir, "mine")
	if err := os.Mkdir(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mine, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dotlock(t, dir, "--slots", "2", mine, "true").want(t, 65, "--slots on a user's directory")
	if ents, _ := os.ReadDir(mine); len(ents) != 1 {
		t.Errorf("the user's directory holds %d entries now, want its 1", len(ents))
	}
	for _, args := range [][]string{
		{"--slots", "2", "-s", sem, "true"},
		{"--slots", "0", sem, "true"},
		{"--slots", "x", sem, "true"},
		{"--slots", "2", "--file", sem, "true"},
		{"--slots", "2", "-u", sem},
		{"--slots", "2", "9"},
	} {
		dotlock(t, dir, args...).want(t, 64, strings.Join(args, " "))
	}
}
