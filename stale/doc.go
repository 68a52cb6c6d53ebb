// Package stale owns dotlock's owner record and decides whether the holder a
// record names is still alive.
//
// Every dotlock lock (package lockfile or lockdir) carries an owner record: a
// short, versioned, human-readable text that says who holds the lock — PID,
// host name, boot ID, PID namespace, process start time, a UUID for the hold,
// when it was acquired, its fencing token and a heartbeat. `cat` shows it.
//
// A Checker judges a record. For a holder on this host (same host name, boot
// ID and PID namespace) it asks the process table: no such PID, or a PID now
// used by a process with another start time, means the holder is dead; a
// different boot ID under the same host name means the host rebooted. A
// holder elsewhere — another host, or a container with its own PID namespace
// — cannot be probed, so its liveness is a lease: the holder rewrites its
// heartbeat, and an Observation decides, by the observer's own monotonic
// clock, whether the heartbeat has stopped changing for long enough. No clock
// comparison across hosts is ever made.
//
// Caveats: the verdict for a local holder is exact only while the record's
// fields are honest; a record written by hand can claim anything. A remote
// holder that is paused (SIGSTOP, a VM freeze, a network partition) for
// longer than its lease is judged dead; the lock packages tell it through
// Lost and ErrLost, and fencing tokens let storage reject its late writes.
package stale
