"""The clean sim passes the depth suites and records the walk's seed (each depth knob is proven
caught naming its rule by tests/test_rule_proof.py)."""
from suite_runner import run_suites, write_profile


def test_clean_profile_records_walk_seed(tmp_path):
    """The clean sim passes the depth suites; the walk prints its seed."""
    profile = write_profile(tmp_path, "sim-p2p-precopy", "depth-clean")
    code, rows, out = run_suites(profile, tmp_path, "-k", "random_walk or mutated", "-s")
    assert code == 0 and rows, out[-2000:]
    assert "hypothesis seed 20261123" in out
