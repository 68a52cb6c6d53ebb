package lockcore

import (
	"strings"
	"testing"
)

// FuzzQueueName: parseQueueName accepts exactly the names queueName makes
// (a waiter removes only records under such names), and gives back what
// made them.
func FuzzQueueName(f *testing.F) {
	u := "6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f"
	f.Add(queueName(1, true, u))
	f.Add(queueName(1<<63, false, u))
	f.Add("1.r.notes")
	f.Add("00000000000000000001.w.../etc/passwd")
	f.Add("00000000000000000001.x." + u)
	f.Fuzz(func(t *testing.T, name string) {
		seq, writer, uuid, ok := parseQueueName(name)
		if !ok {
			return
		}
		if again := queueName(seq, writer, uuid); again != name {
			t.Fatalf("parseQueueName(%q) = %d, %v, %q, which queueName writes as %q", name, seq, writer, uuid, again)
		}
		if strings.ContainsAny(name, "/\\\x00") || !isUUID(uuid) {
			t.Fatalf("parseQueueName accepts %q", name)
		}
	})
}

// FuzzProtocolName: what a lock directory may hold (and so what a break may
// take out of it) is only the record, readers' records, those on their way
// out, and the names network filesystems give removed open files.
func FuzzProtocolName(f *testing.F) {
	for _, n := range []string{OwnerFile, "r.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f", "owner.gone.6a0e1c8e-5f7b",
		".nfs000000000012345600000001", ".fuse_hidden0000000a00000001", "f", "sub", "r.x", ".nfs", "owner.gone.x"} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !protocolName(name) {
			return
		}
		base := name
		if i := strings.LastIndex(name, goneInfix); i > 0 && goneID(name[i+len(goneInfix):]) {
			base = name[:i]
		}
		switch {
		case base == OwnerFile, strings.HasPrefix(base, readerPrefix) && isUUID(base[len(readerPrefix):]), transientName(base):
		default:
			t.Fatalf("protocolName accepts %q", name)
		}
		if strings.ContainsAny(name, "/\\\x00") {
			t.Fatalf("protocolName accepts %q, with a separator or NUL", name)
		}
	})
}

func TestProtocolNames(t *testing.T) {
	for n, want := range map[string]bool{
		OwnerFile: true, "r.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f": true,
		"r.6a0e1c8e-5f7b-4c1e-9d7a-3f2b8c1d0e4f.gone.6a0e1c8e-5f7b": true,
		".nfs000000000012345600000001":                              true, "f": false, "sub": false, "r.notes": false,
		"owner.bak": false, ".nfs": false, ".nfsx": false, "notes.gone.6a0e1c8e-5f7b": false,
	} {
		if got := protocolName(n); got != want {
			t.Errorf("protocolName(%q) = %v, want %v", n, got, want)
		}
	}
}
