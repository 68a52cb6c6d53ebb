package lockcore

// Windows has no uids and no sticky directories: the slot chain never
// grows past P.last, and no refusal is explained by an owner.

func ownerOf(string) (int, bool) { return 0, false }

func unwrapAll(err error) error { return err }

// CanSignal: Windows has no such check here.
func CanSignal(int) error { return nil }
