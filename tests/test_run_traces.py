"""A run leaves nothing but reports/ in the working directory, and no absolute path of the machine
in what it writes (Hypothesis' explanations name source files by absolute path)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from suite_runner import write_profile

ROOT = Path(__file__).resolve().parents[1]


def _machine_paths() -> set[str]:
    return {str(ROOT), os.path.realpath(ROOT), sys.prefix, sys.base_prefix, os.path.expanduser("~")}


def test_a_failing_hypothesis_run_leaves_only_reports_and_no_machine_path(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # a device that accepts hostile streams: the hypothesis-mutated resume tests fail with an explanation
    profile = write_profile(tmp_path, "sim-p2p", "hostile",
                            faults=[{"name": "accept_extra_bytes"}, {"name": "header_checked_only_on_write"}])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPOTHESIS_", "VFIO_CONFORM_"))}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", str(profile), "-q",
                           "--", "-k", "test_hostile"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(os.listdir(work)) == ["reports"]          # no .hypothesis/, no .pytest_cache/
    assert (tmp_path / "cache" / "vfio-conform" / "hypothesis").is_dir()   # Hypothesis' files went here

    written = {p: p.read_bytes().decode("utf-8", "replace") for p in (work / "reports").rglob("*") if p.is_file()}
    explained = [p for p, text in written.items() if "Explanation:" in text]
    assert explained, "no Hypothesis explanation recorded: the check below would prove nothing"
    assert any("vfio_conform/backends/sim/" in written[p] for p in explained)
    leaks = sorted(f"{p.relative_to(work)}: {place}" for p, text in written.items()
                   for place in _machine_paths() if place + "/" in text)
    assert not leaks, leaks


def test_redact_paths_makes_the_machine_paths_relative():
    from vfio_conform.results.redact import redact_paths
    text = (f"{ROOT}/vfio_conform/device/core.py:12\n{ROOT}/suites/fsm/test_arcs.py:3\n"
            f"{os.path.expanduser('~')}/notes.txt\n/dev/vfio/devices/vfio0 stays")
    got = redact_paths(text)
    assert got.splitlines()[:2] == ["vfio_conform/device/core.py:12", "suites/fsm/test_arcs.py:3"]
    assert got.splitlines()[2] in ("~/notes.txt", "notes.txt")       # the home may be the checkout's parent
    assert got.endswith("/dev/vfio/devices/vfio0 stays")
    assert redact_paths(got) == got and redact_paths("") == ""
