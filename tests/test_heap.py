"""The collected session is kept out of the garbage collector's scans until pytest ends, or, inside
`reports_after_session()` (what `vfio-conform run` wraps its session and reports in), until the
reports are written."""
from __future__ import annotations

import gc

from vfio_conform.plugin.heap import FrozenCollection, reports_after_session


def test_frozen_from_collection_to_unconfigure():
    plugin = FrozenCollection()
    alive = [object() for _ in range(10)]
    assert gc.get_freeze_count() == 0
    plugin.pytest_collection_finish(session=None)
    try:
        assert gc.get_freeze_count() > 0       # what collection left alive: out of the scans
    finally:
        plugin.pytest_unconfigure(config=None)
    assert gc.get_freeze_count() == 0 and alive


def test_inside_reports_after_session_the_heap_stays_frozen_until_the_block_ends():
    plugin = FrozenCollection()
    with reports_after_session():
        plugin.pytest_collection_finish(session=None)
        plugin.pytest_unconfigure(config=None)
        assert gc.get_freeze_count() > 0       # the reports are written from the session
    assert gc.get_freeze_count() == 0


def test_the_run_command_freezes_its_session(tmp_path):
    """`vfio-conform run` registers the plugin for a run's tests (and not for `--collect-only`)."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    probe = tmp_path / "probe_plugin.py"
    probe.write_text("import gc\n"
                     "def pytest_runtest_call(item):\n"
                     "    print('FROZEN', gc.get_freeze_count() > 0)\n")
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-stop-copy", "--no-store",
                           "--reports", str(tmp_path / "reports"), "--", "-k", "test_arc and RUNNING", "-p",
                           "probe_plugin", "-s"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": f"{root}:{tmp_path}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "FROZEN True" in proc.stdout and "FROZEN False" not in proc.stdout
