"""The clean v1/mismatch sim profiles pass the region and v1 suites (each region/v1 knob is proven
caught naming its rule by tests/test_rule_proof.py, on the base profile its row in faults.FAULTS names).
"""
import subprocess
import sys

import pytest

from suite_runner import ROOT, write_profile

SUITES = [str(ROOT / "suites" / "regions"), str(ROOT / "suites" / "v1")]
CLEAN = ["sim-p2p", "sim-v1-mmap", "sim-v1-slow", "sim-v1-small", "sim-mismatch"]


def run(profile, tmp_path):
    import sqlite3
    store = tmp_path / f"{profile.stem}.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "--rootdir", str(ROOT), "-q", "-p", "no:cacheprovider",
         "--vc-profile", str(profile), "--vc-store", str(store)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    db = sqlite3.connect(store)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT test_id, outcome, rule, message FROM results")]
    return proc.returncode, rows, proc.stdout + proc.stderr


@pytest.mark.parametrize("base", CLEAN)
def test_clean_profile_passes_region_and_v1_suites(tmp_path, base):
    code, rows, out = run(write_profile(tmp_path, base, f"clean-{base}"), tmp_path)
    bad = [r for r in rows if r["outcome"] not in ("pass", "not-supported")]
    assert code == 0 and not bad, (bad[:5], out[-3000:])
    assert sum(r["outcome"] == "pass" for r in rows) >= 25
