//go:build !linux

package lockcore

// nameMax is NAME_MAX: 255 bytes on the BSDs and macOS; NTFS takes 255
// UTF-16 units, which a name of 255 bytes never exceeds.
func nameMax(string) int { return 255 }
