"""Warm the host's Python caches the lab guest reads, before a boot.

The guest runs the host's interpreter and this package from the host root, shared read-only; what it
compiles goes to a tmpfs and is lost. Under TCG compiling is ~15x slower than here, so the host
compiles once: the package's bytecode, pytest's assertion-rewritten suite modules (collected on a
sim profile), and the rule-id scan of the sources (targets/sourcescan.py; the guest is pointed at
this host's cache directory). Best effort: a read-only install or a failure only costs the guest
time.
"""
from __future__ import annotations

import compileall
import os
import subprocess
import sys

from ..base.constants import FIXTURES_DIR, PACKAGE_DIR, SUITES_DIR, SUITES_INI, SUITES_ROOT
from ..targets.sourcescan import warm_cache

#: A sim profile every install ships: collecting it imports every suite module.
WARM_PROFILE = "sim-p2p-precopy"
WARM_TIMEOUT_S = 120


def warm_host_caches() -> bool:
    """Compile the package and the suites as the guest will load them; True if both worked."""
    compiled = all([compileall.compile_dir(str(folder), quiet=2, workers=1)
                    for folder in dict.fromkeys((PACKAGE_DIR, SUITES_DIR, FIXTURES_DIR))])
    try:
        warm_cache()
    except OSError:
        pass
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    argv = [sys.executable, "-m", "pytest", str(SUITES_DIR), "--rootdir", str(SUITES_ROOT),
            "-c", str(SUITES_INI), "-p", "no:cacheprovider", "-p", "no:benchmark", "--collect-only", "-q",
            "--vc-profile", WARM_PROFILE, "--vc-no-store"]
    try:
        proc = subprocess.run(argv, env=env, cwd=str(SUITES_ROOT), capture_output=True,
                              timeout=WARM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return compiled and proc.returncode == 0
