package lockcore

// ProtocolName reports whether name may stand in a lock directory: the
// command tells a lock directory from a user's directory by it.
func ProtocolName(name string) bool { return protocolName(name) }
