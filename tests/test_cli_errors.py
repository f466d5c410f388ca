"""A bad argument on the command line is one line on stderr, exit 2, and nothing run or written."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "unknown command": (["bogus"], "vfio-conform: error: argument command: invalid choice: 'bogus'"),
    "missing value": (["run", "--profile"], "vfio-conform run: error: argument --profile: expected one argument"),
    "bad int": (["results", "--run", "x"], "vfio-conform results: error: argument --run: invalid int value: 'x'"),
    "bench negative seconds": (["bench", "--seconds", "-1"],
                               "vfio-conform bench: error: argument --seconds: -1 is not above zero"),
    "bench zero workers": (["bench", "--workers", "0"],
                           "vfio-conform bench: error: argument --workers: 0 is not above zero"),
    "bench unknown section": (["bench", "--only", "nosuch"],
                              "vfio-conform bench: error: argument --only: invalid choice: 'nosuch'"),
    "lab unknown subcommand": (["lab", "nosuch"], "vfio-conform lab: error: argument "),
}


@pytest.mark.parametrize("argv,start", CASES.values(), ids=CASES.keys())
def test_bad_argument_is_one_line_and_exit_2(tmp_path, argv, start):
    out = subprocess.run([sys.executable, "-m", "vfio_conform", *argv], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), out.stderr
    assert lines[0].endswith("--help)")
    assert list(tmp_path.iterdir()) == []        # no reports/ or anything else
