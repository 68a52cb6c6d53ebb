//go:build !linux

package stale_test

import (
	"testing"

	"github.com/dotlock/dotlock/stale"
)

// waitZombie: only Linux reports zombies (through /proc).
func waitZombie(t *testing.T, pid int) bool { return false }

func checkIdentityOS(t *testing.T, id stale.Identity) {}

// hidepidJudge: procfs's hidepid is Linux's.
func hidepidJudge(string) int { return 2 }
