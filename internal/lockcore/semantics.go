package lockcore

import (
	"cmp"
	"slices"
)

// insertByToken adds h to a handle's shared holds, which are kept in
// token order: the newest hold (current, and the one RUnlock releases) is
// the one with the greatest token, even when holds taken together by
// several goroutines are installed in another order.
func insertByToken(hs []*hold, h *hold) []*hold {
	i, _ := slices.BinarySearchFunc(hs, h.owner.Token, func(x *hold, tok uint64) int {
		return cmp.Compare(x.owner.Token, tok)
	})
	return slices.Insert(hs, i, h)
}
