#!/bin/sh
# Host setup for vfio-conform (Debian/Ubuntu, run as root). Idempotent.
#  - installs gcc, libc6-dev and linux-libc-dev (for the C header check: tests/test_uapi_header.py);
#  - prefetches Debian's 6.12 uAPI headers into ${XDG_CACHE_HOME:-~/.cache}/vfio-conform/uapi/
#    of the invoking user (SUDO_USER when run through sudo) and checks the Python tables against them.
#  - installs the lab and report packages and the Python package (pip install -e '.[postgres,test,dev]');
#  - builds libvfio-user's sample server for the vfio-user tests (scripts/install-vfio-user.sh) when
#    its source is available (VFIO_USER_SRC, ../shared/third_party, or upstream); else one line says
#    the vfio-user tests will be skipped (CI sets VC_REQUIRE_VFIO_USER=1: then setup fails).
#  - installs labgrid (the `fleet` extra) into the user's cache (scripts/install-labgrid.sh).
set -eu

KVER="${VFIO_CONFORM_KVER:-6.12.117+deb12}"
PKGS="gcc libc6-dev linux-libc-dev dpkg"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

. "$ROOT/scripts/lib/apt.sh"
ensure_packages setup.sh $PKGS
export DEBIAN_FRONTEND=noninteractive

# The real-kernel lab (QEMU) and the report tests (Chromium, PostgreSQL).
sh "$ROOT/scripts/install-lab-deps.sh"
sh "$ROOT/scripts/install-report-deps.sh"

# The Python package before anything runs it (its build and check tools import it, and it needs its
# dependencies: pytest, ...; a fresh machine has none of them yet).
echo "setup.sh: installing the Python package (editable) and its extras"
python3 -m pip install -q -e "$ROOT[postgres,test,dev]"

# The vfio-user backend's test target: libvfio-user's sample server, built into the user's cache.
sh "$ROOT/scripts/install-vfio-user.sh"

# The headers package must be known to apt for 'apt-get download' (never installed: it pulls a kernel).
if ! apt-cache show "linux-headers-$KVER-common" >/dev/null 2>&1; then
    apt-get update
fi

echo "setup.sh: prefetching and checking the $KVER uAPI headers"
cd "$ROOT"
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    runuser -u "$SUDO_USER" -- env HOME="$home" PYTHONPATH="$ROOT" python3 -m vfio_conform.tools.header_check --fetch --kernel "$KVER"
else
    PYTHONPATH="$ROOT" python3 -m vfio_conform.tools.header_check --fetch --kernel "$KVER"
fi

# CI output checks: the kernel's KTAP parser (tools/testing/kunit from Debian's linux-source package,
# fetched with apt-get download into the cache) and the Allure 2 and 3 command lines (npm, into the cache).
echo "setup.sh: prefetching the kernel's KTAP parser and the Allure 2 and 3 command lines"
command -v npm >/dev/null 2>&1 || ensure_packages setup.sh npm
command -v java >/dev/null 2>&1 || ensure_packages setup.sh default-jre-headless
as_user() {     # the invoking user's cache, owned by that user (SUDO_USER when run through sudo)
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        runuser -u "$SUDO_USER" -- env HOME="$(getent passwd "$SUDO_USER" | cut -d: -f6)" "$@"
    else
        "$@"
    fi
}
as_user env PYTHONPATH="$ROOT" python3 "$ROOT/tests/kunit_tools.py"
# labgrid (the `fleet` extra) for `vfio-conform fleet` and its tests, into the user's cache.
as_user sh "$ROOT/scripts/install-labgrid.sh"
as_user sh -c 'd="${XDG_CACHE_HOME:-$HOME/.cache}/vfio-conform/allure"; [ -x "$d/node_modules/.bin/allure" ] ||
    npm install --silent --prefix "$d" allure-commandline'
# Allure 3 (npm package `allure`) beside Allure 2: its own prefix, both install a bin named allure.
as_user sh -c 'd="${XDG_CACHE_HOME:-$HOME/.cache}/vfio-conform/allure3"; [ -x "$d/node_modules/.bin/allure" ] ||
    npm install --silent --prefix "$d" allure'
