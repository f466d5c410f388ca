#!/bin/sh
# Install what the report browser test and the PostgreSQL store tests need (Debian/Ubuntu, as root):
# chromium (headless rendering check) and postgresql (throwaway test clusters). Idempotent.
# The Python driver is an optional extra: pip install -e '.[postgres]'.
set -eu

PKGS="chromium postgresql fonts-dejavu-core"

if [ "$(id -u)" != 0 ]; then
    echo "install-report-deps.sh: run as root (apt-get install needs it)" >&2
    exit 1
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-report-deps.sh: all report packages already installed"
else
    echo "install-report-deps.sh: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends $missing || {
        apt-get update
        apt-get install -y --no-install-recommends $missing
    }
fi

# Debian's postgresql package starts a system cluster; the tests never use it (they initdb their own).
if [ "${1:-}" = "--with-python" ]; then
    python3 -m pip install 'psycopg[binary]>=3.1'
fi
