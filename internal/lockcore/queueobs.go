package lockcore

// forgetGoneWaiters drops the observations (queueObs, see waiterGone) of
// queue records that are not among names, a listing of the queue just
// taken: such a waiter has left, and its record's name (a sequence number
// and a UUID) never comes back. A handle that waits often or long thus
// keeps observations only of the waiters queued at its last look, not of
// every waiter it ever saw. A listing taken just before a record appeared
// may drop that record's observation, which restarts its lease: a dead
// waiter is passed over a little later, never sooner.
func (rw *rwSupport) forgetGoneWaiters(names []string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.queueObs) == 0 {
		return
	}
	listed := make(map[string]bool, len(names))
	for _, n := range names {
		listed[n] = true
	}
	for n := range rw.queueObs {
		if !listed[n] {
			delete(rw.queueObs, n)
		}
	}
}
