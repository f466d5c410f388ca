#!/bin/sh
# Install the host tools the vfio-conform QEMU lab needs (Debian/Ubuntu, run as root).
# Idempotent: packages already present are skipped. Never installs a kernel on the host.
set -eu

PKGS="qemu-system-x86 busybox-static kmod cpio libelf-dev xz-utils make gcc bc dpkg-dev"

if [ "$(id -u)" != 0 ]; then
    echo "install-lab-deps.sh: run as root (apt-get install needs it)" >&2
    exit 1
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-lab-deps.sh: all lab packages already installed"
    exit 0
fi

echo "install-lab-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends $missing || {
    apt-get update
    apt-get install -y --no-install-recommends $missing
}
