#!/bin/sh
# labgrid's client, coordinator and exporter for `vfio-conform fleet` and tests/test_fleet.py:
# the `fleet` extra of pyproject.toml (its pinned labgrid), installed with pip into
# ${XDG_CACHE_HOME:-~/.cache}/vfio-conform/labgrid (commands in its bin/, run with PYTHONPATH set to
# it). A private directory keeps labgrid's pytest plugin and pinned dependencies out of the Python
# the harness and its tests run in. Idempotent. (A lab host may instead `pip install
# 'vfio-conform[fleet]'`: labgrid-client on PATH is used first.)
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${XDG_CACHE_HOME:-$HOME/.cache}/vfio-conform/labgrid"
REQS="$(python3 - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(" ".join(tomllib.load(f)["project"]["optional-dependencies"]["fleet"]))
PY
)"
STAMP="$DEST/.installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQS" ] && [ -x "$DEST/bin/labgrid-client" ]; then
    exit 0
fi
echo "install-labgrid.sh: installing $REQS into $DEST"
rm -rf "$DEST"
python3 -m pip install -q --disable-pip-version-check --target "$DEST" $REQS
echo "$REQS" > "$STAMP"
