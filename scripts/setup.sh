#!/bin/sh
# Host setup for vfio-conform (Debian/Ubuntu, run as root). Idempotent.
#  - installs gcc, libc6-dev and linux-libc-dev (for the C header check: tests/test_uapi_header.py);
#  - prefetches Debian's 6.12 uAPI headers into ${XDG_CACHE_HOME:-~/.cache}/vfio-conform/uapi/
#    of the invoking user (SUDO_USER when run through sudo) and checks the Python tables against them.
# Python packages are not installed here: pip install -e '.[test]'.
set -eu

KVER="${VFIO_CONFORM_KVER:-6.12.117+deb12}"
PKGS="gcc libc6-dev linux-libc-dev dpkg"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run as root (apt-get install needs it)" >&2
    exit 1
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
    echo "setup.sh: installing:$missing"
    apt-get install -y --no-install-recommends $missing || {
        apt-get update
        apt-get install -y --no-install-recommends $missing
    }
else
    echo "setup.sh: gcc, libc6-dev and linux-libc-dev already installed"
fi

# The headers package must be known to apt for 'apt-get download' (never installed: it pulls a kernel).
if ! apt-cache show "linux-headers-$KVER-common" >/dev/null 2>&1; then
    apt-get update
fi

echo "setup.sh: prefetching and checking the $KVER uAPI headers"
cd "$ROOT"
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    runuser -u "$SUDO_USER" -- env HOME="$home" PYTHONPATH="$ROOT" python3 -m vfio_conform.uapi.header_check --fetch --kernel "$KVER"
else
    PYTHONPATH="$ROOT" python3 -m vfio_conform.uapi.header_check --fetch --kernel "$KVER"
fi
