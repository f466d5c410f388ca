"""The consumer scenarios catch each consumer fault knob, failing on the knob's rule; the clean sim
passes them for all four flag sets (base of the knobs: sim-p2p-precopy, the one with DMA logging)."""
import pytest

from suite_runner import assert_caught, run_suites, write_profile
from vfio_conform.backends.sim.faults_consumers import TABLE
from vfio_conform.model.spec import RULES

SIM_PROFILES = ["sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy"]


@pytest.mark.parametrize("base", SIM_PROFILES)
def test_clean_sim_passes_consumer_scenarios(tmp_path, base):
    code, rows, out = run_suites(write_profile(tmp_path, base, f"clean-{base}"), tmp_path,
                                 areas=("consumers",))
    bad = [r for r in rows if r["outcome"] not in ("pass", "not-supported")]
    assert code == 0 and not bad, (bad[:5], out[-3000:])
    passed = {r["test_id"].split("[")[0] for r in rows if r["outcome"] == "pass"}
    for scenario in ("test_consumer_qemu_source", "test_consumer_qemu_destination",
                     "test_consumer_qemu_recovery", "test_consumer_ch_snapshot", "test_consumer_ch_restore"):
        assert scenario in passed, (scenario, sorted(passed))


@pytest.mark.parametrize("knob", TABLE, ids=[k.name for k in TABLE])
def test_consumer_fault_is_caught_naming_its_rule(tmp_path, knob):
    assert knob.rule_id in RULES
    profile = write_profile(tmp_path, "sim-p2p-precopy", f"consumer-{knob.name.replace('_', '-')}",
                            faults=[{"name": knob.name}])
    code, rows, out = run_suites(profile, tmp_path, "-W", "always", "-rw", areas=("consumers",))
    if RULES[knob.rule_id].severity == "should":          # 'should' rules warn, tagged with the rule
        assert f"[{knob.rule_id}]" in out, out[-2000:]
        return
    assert_caught(knob, code, rows, out)
