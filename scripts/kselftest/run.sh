#!/bin/sh
# vfio-conform as a kselftest, the way tools/testing/selftests/vfio takes its devices:
#   run.sh [-p PROFILE] [-d BDF]... [BDF...] [-- PYTEST-ARGS]      (or BDFs in $VFIO_SELFTESTS_BDF)
# KTAP on stdout; exit 0 pass, 1 fail, 4 skip (no device to test). See vfio_conform/tools/kselftest.py.
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m vfio_conform.tools.kselftest "$@"
