"""Run host commands with errors that say what failed and what to install."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import LabError

INSTALL_HINT = "run `sudo scripts/install-lab-deps.sh` (Debian/Ubuntu) to install the lab tools"


def require_tool(name: str) -> str:
    """Return the absolute path of host tool `name`, or raise LabError naming the fix."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise LabError("missing-tool", f"`{name}` not found on PATH; {INSTALL_HINT}")
    return path


def run(argv: Sequence[str | Path], *, kind: str, cwd: Path | None = None,
        env: dict[str, str] | None = None, timeout: float | None = 1800) -> str:
    """Run argv, return its stdout; on failure raise LabError(kind) with the stderr tail."""
    args = [str(a) for a in argv]
    require_tool(args[0])
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(kind, f"`{' '.join(args)}` timed out after {timeout}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise LabError(kind, f"`{' '.join(args)}` failed with exit {proc.returncode}:\n{tail}")
    return proc.stdout
