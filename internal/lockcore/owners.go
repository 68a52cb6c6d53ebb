package lockcore

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/dotlock/dotlock/stale"
)

// userName is "user NAME (uid N)", or "uid N" when the name is unknown (as
// dotlock.ForeignError says it).
func userName(uid int, name string) string {
	if name == "" {
		return "uid " + strconv.Itoa(uid)
	}
	return fmt.Sprintf("user %s (uid %d)", name, uid)
}

// lookupUser is the name of uid, "" if it has none here.
func lookupUser(uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return ""
	}
	return u.Username
}

// explainForeign turns err, a refusal to move name, into a ForeignError if
// name is another user's file on a local filesystem; otherwise it returns
// err. (On a network filesystem owners may be mapped — root_squash, sshfs
// showing the server's uids — and a refusal may be transient: it stays an
// error that cleanups retry.)
func explainForeign(name string, err error) error {
	if foreignErr(err) || !localFS(filepath.Dir(name)) {
		return err
	}
	uid, ok := ownerOf(name)
	if !ok || uid == os.Geteuid() {
		return err
	}
	return &ForeignError{Name: name, UID: uid, User: lookupUser(uid), Err: unwrapAll(err)}
}

// foreignErr reports whether err says that another user's file is in the
// way: permanent, so cleanups do not retry it for the lease.
func foreignErr(err error) bool {
	var fe *ForeignError
	return errors.As(err, &fe)
}

// ownerDesc names the owner of the file name ("" if it cannot be told).
func ownerDesc(name string) string {
	uid, ok := ownerOf(name)
	if !ok {
		return ""
	}
	return userName(uid, lookupUser(uid))
}

// foreignFile reports whether name exists and belongs to another user.
func foreignFile(name string) bool {
	uid, ok := ownerOf(name)
	return ok && uid != os.Geteuid()
}

// foreignGuards holds, by guard path, one observation of a guard of
// another user's for the whole process: a cleanup after the acquisition it
// blocked (with a wait state of its own) goes on watching the same bytes
// instead of starting another grace period. A guard of this user's is
// watched per wait state, as the model has it.
var foreignGuards sync.Map // path -> *sharedObs

type sharedObs struct {
	mu sync.Mutex
	ob stale.Observation
}

// guardObservation is the observation to judge the guard at path by, and
// the function to call when done with it.
func guardObservation(ws *waitState, path string) (*stale.Observation, func()) {
	if !foreignFile(path) {
		return &ws.guardObs, func() {}
	}
	v, _ := foreignGuards.LoadOrStore(path, &sharedObs{})
	so := v.(*sharedObs)
	so.mu.Lock()
	return &so.ob, so.mu.Unlock
}
