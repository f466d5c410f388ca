"""CI's first lane (.ci/run): ruff and mypy, configured in pyproject.toml, find nothing.

Installed with the `dev` extra (`pip install -e '.[dev]'`, which scripts/setup.sh does); without
them these tests skip, unless VC_REQUIRE_REPORT_DEPS (CI) is set.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        why = f"{module} not installed (pip install -e '.[dev]')"
        if os.environ.get("VC_REQUIRE_REPORT_DEPS"):
            pytest.fail(why)
        pytest.skip(why)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    _tool("ruff")
    proc = _run("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


def test_mypy_strict_on_uapi_model_and_device():
    _tool("mypy")
    proc = _run("mypy", "--no-incremental", "--cache-dir", os.devnull)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout


def test_the_lint_lane_is_ci_first_and_catches_an_undefined_name(tmp_path):
    """.ci/run runs the lint before anything else; and ruff's configuration catches a real bug."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("ruff check") < ci.index("scripts/setup.sh") < ci.index("vfio_conform run")
    _tool("ruff")
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return undefined_name\n")
    proc = _run("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert proc.returncode == 1 and "F821" in proc.stdout, proc.stdout
