"""The baseline for every fault-knob proof: the unmodified sim passes every suite for all four flag
sets. That each knob is caught, naming its rule, is tests/test_rule_proof.py."""
import pytest

from suite_runner import run_suites, write_profile

SIM_PROFILES = ["sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy"]


@pytest.mark.parametrize("base", SIM_PROFILES)
def test_clean_sim_passes_every_suite(tmp_path, base):
    code, rows, out = run_suites(write_profile(tmp_path, base, f"clean-{base}"), tmp_path)
    outcomes = {r["outcome"] for r in rows}
    bad = [r for r in rows if r["outcome"] not in ("pass", "not-supported")]
    assert code == 0 and not bad, (bad[:5], out[-3000:])
    assert "pass" in outcomes and len(rows) > 40
