#!/bin/busybox sh
# vfio-conform lab, stage 1 (PID 1 in the initramfs): mount the shares, build the
# root from the host's read-only shares, chroot and hand over to guest.py. Every exit path powers off.
/bin/busybox mkdir -p /bin /proc /sys /dev /lower /upper /results /newroot
/bin/busybox --install -s /bin
export PATH=/bin

say() { echo "VFIO-LAB: $*" > /dev/console; }
die() { say "FATAL stage1: $*"; sync; echo o > /proc/sysrq-trigger; sleep 30; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq
say "stage1 start"

for m in $(cat /modules/order); do
    insmod "/modules/$m.ko" || die "insmod $m failed"
done

P9="trans=virtio,version=9p2000.L,msize=524288"
# The results share stays uncached: each write goes straight to the host (nothing to lose when the
# guest dies), and no page-cache write-back runs. With cache=mmap, two processes writing to the
# share under TCG hung the guest in the 6.12 netfs write-back path (console: "R=...: No submit").
mount -t 9p -o "$P9" results /results || die "mount of the results 9p share failed"
[ -f /results/boot.env ] || die "/results/boot.env missing (host wrote no boot environment)"
. /results/boot.env

# The root is a tmpfs holding only what the host shares (lab/shares.py): /usr, the Python
# installation, the checkout, the caches, each read-only, at its host path, under a tmpfs overlay
# (writes stay in the guest). The shares do not change under a run: cached (imports and collection
# stat and read thousands of files).
mount -t tmpfs -o mode=0755 tmpfs /newroot || die "tmpfs for the root failed"
mount -t tmpfs -o mode=0755 tmpfs /upper || die "tmpfs for the overlays failed"
for link in $LAB_LINKS; do ln -s "${link#*=}" "/newroot/${link%%=*}"; done
for share in $LAB_SHARES; do
    tag="${share%%=*}"; path="${share#*=}"
    mkdir -p "/lower/$tag" "/upper/$tag/up" "/upper/$tag/work" "/newroot$path"
    mount -t 9p -o "$P9,ro,cache=loose" "$tag" "/lower/$tag" || die "mount of the 9p share $path failed"
    mount -t overlay overlay -o "lowerdir=/lower/$tag,upperdir=/upper/$tag/up,workdir=/upper/$tag/work" \
        "/newroot$path" || die "overlay mount of $path failed"
done
cp -a /results/guest-etc /newroot/etc || die "copying the guest's /etc failed"
ln -sf /proc/self/mounts /newroot/etc/mtab
for d in proc sys dev tmp run root var/tmp vfio-lab/results "lib/modules/$LAB_KVER"; do mkdir -p "/newroot/$d"; done
chmod 1777 /newroot/tmp /newroot/var/tmp
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/run
mount --bind /results /newroot/vfio-lab/results
mount --bind "/newroot$LAB_MODULES" "/newroot/lib/modules/$LAB_KVER" || die "bind of $LAB_MODULES failed"
mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null

say "stage2 start"
chroot /newroot "$LAB_PYTHON" "$LAB_GUEST" /vfio-lab/results/spec.json
say "stage2 exit $?"
sync
umount /newroot/vfio-lab/results 2>/dev/null
umount /results 2>/dev/null
echo o > /proc/sysrq-trigger
sleep 30    # session.py's POWEROFF_WAIT_S: past it, init exits and the host reports the stalled power-off
