package lockcore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dotlock/dotlock/stale"
)

// breakGroup is Break for a lock directory held in shared mode: dead readers
// are removed (S6: inspectGroup), or with force every reader, and a group
// left without readers is dissolved and the lock handed on.
func (l *Lock) breakGroup(ctx context.Context, ws *waitState, force bool) (Broken, error) {
	var res Broken
	names, err := l.rw.readerNames()
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, l.pathErr("break", err)
	}
	type rec struct {
		path  string
		data  []byte
		owner *stale.Owner
		why   string
	}
	var recs []rec
	for _, n := range names {
		p := filepath.Join(l.rw.dir.Path(), n)
		data, err := readIn(nil, l.rw.dir.Path(), n)
		if err != nil {
			continue
		}
		r := rec{path: p, data: data}
		if o, perr := stale.Parse(data); perr == nil {
			r.owner = &o
			r.why = l.cfg.Checker.Judge(o).Reason
		} else {
			r.why = perr.Error()
		}
		recs = append(recs, r)
	}
	gone := func(r rec) {
		if r.owner != nil {
			res.Owners = append(res.Owners, *r.owner)
		} else {
			res.Unreadable = true
		}
	}
	if !force {
		blk, err := l.rw.inspectGroup(ctx, ws)
		if err != nil {
			return res, l.pathErr("break", err)
		}
		for _, r := range recs {
			// A reader's record is named by its UUID: gone means removed.
			if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
				gone(r)
				res.Reason = r.why
			}
		}
		if blk != nil {
			return res, l.pathErr("break", blk)
		}
		return res, nil
	}
	err = l.rw.under(ctx, ws, func(s rwIn) error {
		for _, r := range recs {
			ok, err := retireFile(s.o, r.path, func(m []byte) bool { return bytes.Equal(m, r.data) })
			if err != nil {
				return &BreakError{Owner: r.owner, Reason: "forced", Err: unwrapPath(err)}
			}
			if ok {
				gone(r)
			}
		}
		return s.dissolve()
	})
	res.Reason = "forced"
	if err != nil {
		return res, l.pathErr("break", err)
	}
	l.wake.notify()
	return res, nil
}
