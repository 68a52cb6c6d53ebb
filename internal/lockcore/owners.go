package lockcore

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// ForeignError says that a file dotlock must move or remove belongs to
// another user who alone (with root) may remove it: in a sticky directory
// (/tmp), or one this user cannot write. It unwraps to the system's error
// (matching fs.ErrPermission), and reaches callers inside an *fs.PathError.
type ForeignError struct {
	Name string // the file
	UID  int
	User string // the uid's name, "" if unknown
	Err  error
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%v: %s belongs to %s; only that user or root may remove it (ask them to)", e.Err, e.Name, userName(e.UID, e.User))
}

func (e *ForeignError) Unwrap() error { return e.Err }

// userName is "name (uid N)", or "uid N" when the name is unknown.
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
// name is another user's file; otherwise it returns err.
func explainForeign(name string, err error) error {
	uid, ok := ownerOf(name)
	if !ok || uid == os.Geteuid() {
		return err
	}
	return &ForeignError{Name: name, UID: uid, User: lookupUser(uid), Err: unwrapAll(err)}
}

// foreignFile reports whether name exists and belongs to another user.
func foreignFile(name string) bool {
	uid, ok := ownerOf(name)
	return ok && uid != os.Geteuid()
}
