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
SANITIZE=--sanitize
for arg in "$@"; do
    [ "$arg" = --no-sanitize ] && SANITIZE=
done
set -- $(for arg in "$@"; do [ "$arg" = --no-sanitize ] || printf '%s\n' "$arg"; done) $SANITIZE
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    exec runuser -u "$SUDO_USER" -- env HOME="$home" PYTHONPATH="$ROOT" \
        python3 -m vfio_conform.backends.vfio_user.build "$@"
fi
PYTHONPATH="$ROOT" exec python3 -m vfio_conform.backends.vfio_user.build "$@"
