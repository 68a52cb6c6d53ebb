package lockcore

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/dotlock/dotlock/stale"
)

// judgeHolder is the checker's verdict on o, whose record is data, with one
// more test for a holder judged alive on this host: the record file's owner
// must be one of its process's users (real, effective or saved uid).
// Anyone who can write the directory can forge a record naming a process
// that lives for ever (PID 1, with its real start time); such a record is
// not proven alive, so it is judged dead — and broken, if its file may be
// moved. Only on a local filesystem (on NFS, root_squash and failed NFSv4
// id mapping show owners as nobody), only with the system's process table,
// and never for a file of root's (root may lock for any process: dotlock
// lock --pid).
func (l *Lock) judgeHolder(o stale.Owner, data []byte) stale.Judgement {
	j := l.cfg.Checker.Judge(o)
	if j.Verdict != stale.Alive || !l.local || !systemTable(l.cfg.Checker) {
		return j
	}
	uid, ok := l.recordOwner(o, data)
	if !ok || uid == 0 {
		return j
	}
	uids, err := procUIDs(o.PID)
	if err != nil {
		return j // not known: alive, as any failed probe (P3)
	}
	for _, u := range uids {
		if u == uid {
			return j
		}
	}
	return stale.Judgement{Verdict: stale.Dead, Reason: fmt.Sprintf(
		"not proven alive: pid %d runs as uid %s, but the record's file belongs to %s (forged?)",
		o.PID, joinInts(uids), userName(uid, lookupUser(uid)))}
}

// forgedFile reports whether o, read from a file owned by uid, is a
// record judgeHolder would find not proven alive: a holder alive on this
// host whose process runs as none of uid (a queued waiter's record, which
// the queue would otherwise copy into P/owner — a file of the scheduler's
// — and so launder: a neighbour's forged waiter naming another user's
// long-lived process would hold the lock as long as that process lives).
// Same exceptions as judgeHolder: a network filesystem, another process
// table, root's files, an owner or process not known.
func (l *Lock) forgedFile(o stale.Owner, uid int) bool {
	if uid <= 0 || !l.local || !systemTable(l.cfg.Checker) || l.cfg.Checker.Judge(o).Verdict != stale.Alive {
		return false
	}
	uids, err := procUIDs(o.PID)
	if err != nil {
		return false
	}
	for _, u := range uids {
		if u == uid {
			return false
		}
	}
	return true
}

func systemTable(ch *stale.Checker) bool {
	switch ch.Processes.(type) {
	case stale.SystemProcesses, *stale.SystemProcesses:
		return true
	}
	return false
}

// recordOwner is the uid of the file that holds data, o's record: the lock
// record, the breaker guard or a shared holder's record, read again with
// its owner. ok is false if no file holds data now (a heartbeat may have
// changed it since: then there is no evidence).
func (l *Lock) recordOwner(o stale.Owner, data []byte) (int, bool) {
	names := []string{l.kind.ownerPath()}
	switch o.Mode {
	case stale.ModeBreaker:
		names = []string{l.guard.Path()}
	case stale.ModeShared:
		if p, err := l.kind.readerPath(o.UUID); err == nil { // a lock directory's reader
			names = append(names, p)
		}
	}
	for _, name := range names {
		uid := -1
		if got, err := readRecordLocalOwner(name, &uid); err == nil && uid >= 0 && bytes.Equal(got, data) {
			return uid, true
		}
	}
	return 0, false
}

func joinInts(v []int) string {
	var b []byte
	for i, n := range v {
		if i > 0 {
			b = append(b, '/')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}
