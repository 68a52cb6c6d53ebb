// Package faultfstest is a FUSE loopback filesystem that injects faults, for
// testing the lock packages against what network filesystems do: an
// operation that fails, one that happens but whose reply is lost, a write
// torn half-way, an operation that takes its time. Everything else passes
// through to a backing directory, which tests use as the fault-free view of
// the same files (another host's, say).
//
// Faults follow rules, per operation and name, decided by a seed: the n-th
// matching call of an operation on a name fires or not by a hash of the
// seed, the rule and n, so the same seed makes the same decisions however
// the calls of other operations interleave.
//
// It runs on Linux (FUSE and the root it needs to mount here); its tests
// skip, saying why, where it cannot mount.
package faultfstest
