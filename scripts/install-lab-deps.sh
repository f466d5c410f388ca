#!/bin/sh
# Install the host tools the vfio-conform QEMU lab needs (Debian/Ubuntu, run as root).
# Idempotent: packages already present are skipped. Never installs a kernel on the host.
# debootstrap builds the Debian trixie chroot whose QEMU 10 the consumer lane runs in the guest
# (`vfio-conform lab consumers`) and the trixie build chroot of 7.x kernels (`lab matrix`); both live
# in the lab cache, nothing is installed on the host. debian-archive-keyring: the kernel matrix's private
# apt configuration checks the Debian archives against it.
set -eu
. "$(dirname "$0")/lib/apt.sh"
ensure_packages install-lab-deps.sh qemu-system-x86 busybox-static kmod cpio libelf-dev xz-utils \
    make gcc bc dpkg-dev debootstrap debian-archive-keyring
