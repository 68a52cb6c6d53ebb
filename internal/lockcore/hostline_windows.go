package lockcore

// lineFile: no host lines on Windows, whose network filesystems dotlock
// does not tell from local ones (knownNetworkFS).
type lineFile struct{}

func openHostLine(string) (lineFile, bool) { return lineFile{}, false }
func (lineFile) tryLock() bool             { return false }
func (lineFile) close()                    {}
func (lineFile) ring()                     {}
func (lineFile) bellPath() string          { return "" }
