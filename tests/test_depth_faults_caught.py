"""The depth suites catch each depth fault knob, failing on the knob's rule (base: sim-p2p-precopy)."""
import pytest

from suite_runner import ROOT, assert_caught, run_suites, write_profile
from vfio_conform.backends.sim.faults_depth import TABLE

DEPTH = str(ROOT / "suites" / "depth")
#: Longer walks for the knob only a walk can see (a read of a live saving fd at an odd size).
WALK_HEAVY = {"walk": {"examples": 100, "steps": 40, "mutations": 25, "seed": 20261123}}


@pytest.mark.parametrize("knob", TABLE, ids=[k.name for k in TABLE])
def test_depth_fault_is_caught_naming_its_rule(tmp_path, knob):
    overrides = WALK_HEAVY if knob.rule_id == "walk.model-agreement" else {}
    profile = write_profile(tmp_path, "sim-p2p-precopy", f"depth-{knob.name.replace('_', '-')}",
                            faults=[{"name": knob.name}], **overrides)
    code, rows, out = run_suites(profile, tmp_path, areas=("depth", "data"))
    assert_caught(knob, code, rows, out)


def test_clean_profile_records_walk_seed(tmp_path):
    """The clean sim passes the depth suites; the walk prints its seed."""
    profile = write_profile(tmp_path, "sim-p2p-precopy", "depth-clean")
    code, rows, out = run_suites(profile, tmp_path, "-k", "random_walk or mutated", "-s")
    assert code == 0 and rows, out[-2000:]
    assert "hypothesis seed 20261123" in out
