package vmtest

import (
	"fmt"
	"strings"
	"time"
)

// Mount is one filesystem mounted at Path on both clients.
type Mount struct {
	Name    string // "nfs3", "nfs42", "smb", and each with "-nocache"
	Path    string // on A and B
	Type    string // mount -t
	Source  string
	Options string // what a user would add; "" and vers=... is the default
	Default bool   // mounted with the default options
}

// smbCreds are the Samba account's (root, as the NFS exports' root).
const smbCreds = "username=root,password=vmtest"

// Mounts lists the mounts on A and B. Each export is mounted more than once,
// so the extra mounts have nosharecache/nosharesock: else they would share
// the first mount's caches (and options).
var Mounts = []Mount{
	{"nfs3", "/mnt/nfs3", "nfs", ServerIP + ":/export", "vers=3", true},
	{"nfs42", "/mnt/nfs42", "nfs", ServerIP + ":/", "vers=4.2", true},
	{"smb", "/mnt/smb", "cifs", "//" + ServerIP + "/export", "vers=3.1.1", true},
	{"nfs3-nocache", "/mnt/nfs3-nocache", "nfs", ServerIP + ":/export", "vers=3,actimeo=0,lookupcache=none,nosharecache", false},
	{"nfs42-nocache", "/mnt/nfs42-nocache", "nfs", ServerIP + ":/", "vers=4.2,actimeo=0,lookupcache=none,nosharecache", false},
	{"smb-nocache", "/mnt/smb-nocache", "cifs", "//" + ServerIP + "/export", "vers=3.1.1,cache=none,actimeo=0,nosharesock", false},
	// What the README asks for where processes on SMB may be SIGKILLed:
	// no leases, so none is left behind by a killed open (chaos_test.go).
	{"smb-nolease", "/mnt/smb-nolease", "cifs", "//" + ServerIP + "/export", "vers=3.1.1,nolease,nosharesock", false},
}

// serverScript exports a tmpfs at /export over NFS (v3 at /export, v4 at
// / through fsid=0: the overlay root cannot be exported) and SMB (share
// "export"). nfsd's grace period is cut to 10 s before it starts, then
// ended at once: a restart in a test gets a short one.
const serverScript = `set -e
modprobe nfsd
mount -t nfsd nfsd /proc/fs/nfsd
mkdir -p /export /run/rpcbind /var/lib/nfs/sm /run/samba
mount -t tmpfs -o size=64m,mode=1777 tmpfs /export
echo 10 >/proc/fs/nfsd/nfsv4gracetime
echo 10 >/proc/sys/fs/nfs/nlm_grace_period
rpcbind
rpc.statd
echo '/export *(rw,sync,no_root_squash,no_subtree_check,insecure,fsid=0)' >/etc/exports
exportfs -ra
rpc.mountd
rpc.nfsd 4
echo Y >/proc/fs/nfsd/v4_end_grace
cat >/etc/samba/smb.conf <<'CONF'
[global]
server role = standalone server
disable netbios = yes
smb ports = 445
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes
log file = /tmp/smbd.log
[export]
path = /export
read only = no
CONF
printf 'vmtest\nvmtest\n' | smbpasswd -s -a root >/dev/null
smbd -D
`

// clientScript starts what NFS v3's locking needs (mount refuses without
// rpc.statd) and mounts everything not yet mounted.
func clientScript() string {
	var b strings.Builder
	b.WriteString("set -e\nmkdir -p /run/rpcbind /var/lib/nfs/sm\npidof rpcbind >/dev/null || rpcbind\npidof rpc.statd >/dev/null || rpc.statd\n")
	for _, m := range Mounts {
		opts := m.Options
		if m.Type == "cifs" {
			opts += "," + smbCreds
		}
		fmt.Fprintf(&b, "mkdir -p %s\nmountpoint -q %[1]s || mount -t %s -o %s %s %[1]s\n", m.Path, m.Type, opts, m.Source)
	}
	return b.String()
}

// setup starts the servers on S and mounts on A and B, retrying the
// mounts until S answers.
func (c *Cluster) setup(deadline time.Time) error {
	out, errOut, exit, err := c.Run(S, time.Until(deadline), "sh", "-c", serverScript)
	if err != nil || exit != 0 {
		return fmt.Errorf("server: exit %d, %v\n%s%s", exit, err, out, errOut)
	}
	errs := make(chan error, 2)
	for _, h := range []string{A, B} {
		go func() { errs <- c.mountAll(h, deadline) }()
	}
	return firstErr(<-errs, <-errs)
}

func (c *Cluster) mountAll(h string, deadline time.Time) error {
	for {
		out, errOut, exit, err := c.Run(h, time.Until(deadline), "sh", "-c", clientScript())
		if err == nil && exit == 0 {
			return nil
		}
		if err != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s: mounts: exit %d, %v\n%s%s", h, exit, err, out, errOut)
		}
		time.Sleep(500 * time.Millisecond) // S's daemons may still be starting
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
