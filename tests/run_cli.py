"""Run `python3 -m vfio_conform ...` in a subprocess (this checkout first on PYTHONPATH)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "vc_plugins"


def env(**extra: str) -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGINS), out.get("PYTHONPATH", "")])
    out.update(extra)
    return out


def _argv(args) -> list[str]:
    """The command line; a `run` writes its JUnit/Allure output to a temporary directory."""
    args = [str(a) for a in args]
    if args[:1] == ["run"] and "--reports" not in args:
        args[1:1] = ["--reports", tempfile.mkdtemp(prefix="vc-test-reports-")]
    return [sys.executable, "-m", "vfio_conform", *args]


def vc(*args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    """`python3 -m vfio_conform ARGS` -> CompletedProcess (text; stdout/stderr captured)."""
    return subprocess.run(_argv(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env(**extra_env))


def popen(*args: str, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen(_argv(args), cwd=ROOT,
                            env=env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def sqlite_rows(path: Path, sql: str) -> list[dict]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    finally:
        db.close()
