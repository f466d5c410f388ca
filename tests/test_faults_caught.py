"""The harness catches a misbehaving driver: each sim fault knob makes the suites fail on its rule.

Also the baseline: the unmodified sim passes every suite for all four flag sets.
"""
import pytest

from suite_runner import assert_caught, run_suites, write_profile
from vfio_conform.backends.sim.faults import CORE_FAULTS, FAULTS

#: The core knobs break rules of the core suites; the other areas prove their own knobs.
CORE_AREAS = ("fsm", "data")
SIM_PROFILES = ["sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy"]
#: Knobs proven elsewhere than fsm/data on sim-p2p-precopy: (base profile, areas, extra pytest args).
#: A device without migration (v1 sim) or without DMA logging (STOP_COPY sim) for the ENOTTY rules,
#: the DMA logging suite for the dirty-tracking knobs.
PROOF_SETUP = {
    "mig_features_einval_without_ops": ("sim-v1-slow", ("fsm",), ()),
    "log_features_einval_without_ops": ("sim-stop-copy", ("fsm",), ()),
    "dma_start_page_size_bogus": ("sim-p2p-precopy", ("depth",), ("-k", "dma")),
    "dma_report_rescale_wrong": ("sim-p2p-precopy", ("depth",), ("-k", "dma")),
    "dma_report_keeps_log": ("sim-p2p-precopy", ("depth",), ("-k", "dma")),
}


@pytest.mark.parametrize("base", SIM_PROFILES)
def test_clean_sim_passes_every_suite(tmp_path, base):
    code, rows, out = run_suites(write_profile(tmp_path, base, f"clean-{base}"), tmp_path)
    outcomes = {r["outcome"] for r in rows}
    bad = [r for r in rows if r["outcome"] not in ("pass", "not-supported")]
    assert code == 0 and not bad, (bad[:5], out[-3000:])
    assert "pass" in outcomes and len(rows) > 40


@pytest.mark.parametrize("fault", sorted(CORE_FAULTS))
def test_fault_is_caught_naming_its_rule(tmp_path, fault):
    knob = FAULTS[fault]
    base, areas, extra = PROOF_SETUP.get(fault, ("sim-p2p-precopy", CORE_AREAS, ()))
    profile = write_profile(tmp_path, base, f"fault-{fault.replace('_', '-')}", faults=[{"name": fault}])
    code, rows, out = run_suites(profile, tmp_path, *extra, areas=areas)
    assert_caught(knob, code, rows, out)
