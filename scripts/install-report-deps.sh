#!/bin/sh
# Install what the report browser test and the PostgreSQL store tests need (Debian/Ubuntu, as root):
# chromium (headless rendering check) and postgresql (throwaway test clusters). Idempotent.
# The Python driver is an optional extra: pip install -e '.[postgres]'.
set -eu

. "$(dirname "$0")/lib/apt.sh"
ensure_packages install-report-deps.sh chromium postgresql fonts-dejavu-core

# Debian's postgresql package starts a system cluster; the tests never use it (they initdb their own).
if [ "${1:-}" = "--with-python" ]; then
    python3 -m pip install 'psycopg[binary]>=3.1'
fi
