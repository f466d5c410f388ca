#!/bin/sh
# Build libvfio-user's sample server (the vfio-user backend's test target) into the user's cache.
# Idempotent: installs meson, ninja-build, pkg-config, libjson-c-dev and libcmocka-dev (as root) and
# builds, with meson and ninja into ${XDG_CACHE_HOME:-~/.cache}/vfio-conform/vfio-user/<commit>/,
# the first source found: $VFIO_USER_SRC (a source tree or tarball), the snapshot
# ../shared/third_party/libvfio-user-<commit>.tar.gz beside the checkout (VC_LIBVFIO_USER_TARBALL
# overrides), or the pinned commit fetched from upstream where the network allows. Without one it
# prints one line (the vfio-user tests will be skipped, and why) and exits 0; with
# VC_REQUIRE_VFIO_USER set (CI) it fails. An existing build is kept. The same source is also built
# with AddressSanitizer and UndefinedBehaviorSanitizer into build-sanitize/ (meson
# -Db_sanitize=address,undefined; `serve --sanitized` runs it); --no-sanitize skips that.
# The third-party source is never copied into this repository.
set -eu

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" = 0 ]; then
    . "$ROOT/scripts/lib/apt.sh"
    ensure_packages install-vfio-user.sh meson ninja-build pkg-config libjson-c-dev libcmocka-dev gcc
fi
# The build tool is part of the Python package and needs its dependencies (pytest, PyYAML, ...).
if ! err="$(PYTHONPATH="$ROOT" python3 -c 'import vfio_conform.backends.vfio_user.build' 2>&1)"; then
    echo "install-vfio-user.sh: the Python package cannot be imported ($(printf '%s\n' "$err" | tail -n 1));" \
         "install it first: python3 -m pip install -e '$ROOT' (scripts/setup.sh does)" >&2
    exit 2
fi
# its main() called, not run with -m (the package imports the module first: runpy warns)
BUILD='import sys; from vfio_conform.backends.vfio_user.build import main; sys.exit(main(sys.argv[1:]))'
SANITIZE=--sanitize
for arg in "$@"; do
    [ "$arg" = --no-sanitize ] && SANITIZE=
done
set -- $(for arg in "$@"; do [ "$arg" = --no-sanitize ] || printf '%s\n' "$arg"; done) $SANITIZE
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    exec runuser -u "$SUDO_USER" -- env HOME="$home" PYTHONPATH="$ROOT" \
        python3 -c "$BUILD" "$@"
fi
PYTHONPATH="$ROOT" exec python3 -c "$BUILD" "$@"
