package vmtest

// stage1 is the initramfs's /init (busybox): it mounts the host's / (9p,
// read-only) under a tmpfs overlay and switches to it, handing busybox init
// the scripts below. The kernel passes vmhost= and vmip= as environment.
const stage1 = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "vmtest stage1: $*"; poweroff -f; }
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in /m/*.ko; do insmod "$m" || fail "insmod $m"; done
i=0
# The virtio device may show up just after its driver loads.
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /ro; do
	i=$((i+1)); [ $i -lt 50 ] || fail "mount hostroot"; sleep 0.1
done
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "tmpfs"
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "overlay"
# busybox names its applet by argv[0]: keep the name "busybox".
mkdir /newroot/vmtest
cp /vmtest-busybox /newroot/vmtest/busybox && cp /stage2 /newroot/vmtest/ || fail "copy"
cp /inittab /newroot/etc/inittab || fail "copy"
echo "vmhost=$vmhost vmip=$vmip" >/newroot/vmtest/env
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
exec switch_root /newroot /vmtest/busybox init
`

// inittab runs stage2 under busybox init, which reaps orphans as PID 1 must.
// The loop runs in busybox's shell: its read -t waits without a fork (a
// sleep process 20 times a second cost a third of a core under TCG).
const inittab = `::sysinit:/bin/sh /vmtest/stage2 setup
::once:/vmtest/busybox sh /vmtest/stage2 loop
`

// stage2 runs from the host's root: "setup" brings up the guest (hostname,
// network, share), "loop" runs the commands that Run and Spawn drop into
// the guest's control directory: X.cmd is renamed X.sh and run, writing
// X.out, X.err and, last, X.rc.
const stage2 = `#!/bin/sh
. /vmtest/env
case $1 in
setup)
	mount -t sysfs sys /sys
	mount -t tmpfs -o mode=0755 tmpfs /run
	mount -t tmpfs -o mode=1777 tmpfs /tmp
	mkdir -p /dev/pts /dev/shm
	mount -t devpts devpts /dev/pts
	mount -t tmpfs tmpfs /dev/shm
	echo "vm-$vmhost" >/proc/sys/kernel/hostname
	modprobe virtio_net
	ip link set lo up
	dev=eth0
	if [ "$vmhost" = s ]; then
		# S bridges its links to A and B.
		modprobe bridge
		ip link add br0 type bridge
		for i in eth0 eth1; do ip link set $i master br0 && ip link set $i up; done
		dev=br0
	fi
	ip addr add "$vmip/24" dev $dev
	ip link set $dev up
	mkdir -p /vmshare
	mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 share /vmshare
	;;
loop)
	cd "/vmshare/ctl/$vmhost" || exit 1
	mkfifo /run/vmtest-tick && exec 3<>/run/vmtest-tick
	cat /proc/sys/kernel/random/boot_id >ready.tmp && mv ready.tmp ready
	while :; do
		for f in *.cmd; do
			[ -e "$f" ] || continue
			id=${f%.cmd}
			mv "$f" "$id.sh"
			(/bin/sh "$id.sh" >"$id.out" 2>"$id.err" </dev/null; echo $? >"$id.rc.tmp"; mv "$id.rc.tmp" "$id.rc") &
		done
		read -t 0.05 x <&3 # nobody writes: a 50 ms wait
	done
	;;
esac
`
