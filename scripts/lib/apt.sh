# Shared by the install scripts: ensure_packages NAME PKG... installs the missing Debian packages.
# Needs root. Tries without 'apt-get update' first (fast when the lists are fresh), then with it.

ensure_packages() {
    who="$1"; shift
    if [ "$(id -u)" != 0 ]; then
        echo "$who: run as root (apt-get install needs it)" >&2
        exit 1
    fi
    missing=""
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    if [ -z "$missing" ]; then
        echo "$who: already installed: $*"
        return 0
    fi
    echo "$who: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing || {
        apt-get update
        apt-get install -y --no-install-recommends $missing
    }
}
