"""The region suites access a region only with the widths its profile grants (`regions.<R>.widths`).

A sim whose BAR0 and BAR2 answer only 4-byte accesses (backends/sim/regions.py `widths`) passes the
region suites when its profile grants exactly that width, fails region.access-widths when the profile
grants a width the device refuses, and fails it when the granted width breaks (knob width_fails; its
proof row in docs/rule-proof.md runs on the same setup).
"""
import pytest

from suite_runner import run_suites, write_profile
from vfio_conform.backends.sim.faults import WIDTH_ONLY_POLICY, WIDTH_ONLY_REGIONS

AREAS = ("regions",)


def _profile(tmp_path, name, faults=None, **policy_changes):
    policy = {k: (dict(v) if isinstance(v, dict) else v) for k, v in WIDTH_ONLY_POLICY.items()}
    for region, widths in policy_changes.items():
        policy[region]["widths"] = list(widths)
    return write_profile(tmp_path, "sim-p2p", name, faults=faults,
                         sim_config={"regions": list(WIDTH_ONLY_REGIONS)}, regions=policy)


def test_granted_widths_only_passes(tmp_path):
    code, rows, out = run_suites(_profile(tmp_path, "dword-only"), tmp_path, areas=AREAS)
    bad = [r for r in rows if r["outcome"] not in ("pass", "not-supported")]
    assert code == 0 and not bad, (bad[:5], out[-3000:])
    passed = {r["test_id"].split("[")[0] for r in rows if r["outcome"] == "pass"}
    # every region test that touches BAR0/BAR2 ran (with 4-byte accesses), none was skipped for it
    assert {"test_region_last_byte_accessible", "test_region_out_of_bounds_contained",
            "test_region_unaligned_access", "test_region_pread_and_mmap_agree",
            "test_region_write_seen_through_other_path"} <= passed, sorted(passed)
    bar0 = [r for r in rows if "BAR0" in r["test_id"] and r["outcome"] == "pass"]
    assert len(bar0) >= 6, [r["test_id"] for r in rows if "BAR0" in r["test_id"]]
    w4 = [r for r in rows if r["test_id"].startswith("test_region_access_width[") and "w4" in r["test_id"]
          and "BAR0" in r["test_id"]]
    assert w4 and all(r["outcome"] == "pass" for r in w4), w4


@pytest.mark.parametrize("claimed", [[1, 2, 4, 8], [2, 4]])
def test_a_granted_width_the_device_refuses_fails(tmp_path, claimed):
    profile = _profile(tmp_path, "dword-claims-more", BAR0=claimed, BAR2=claimed)
    code, rows, out = run_suites(profile, tmp_path, areas=AREAS)
    failed = [r for r in rows if r["outcome"] == "fail"]
    assert code == 1 and failed, out[-3000:]
    assert {r["rule"] for r in failed} <= {"region.access-widths", "region.mmap-coherent",
                                           "region.last-byte-accessible"}, failed
    assert any(r["rule"] == "region.access-widths" and "w2" in r["test_id"] for r in failed), failed


def test_a_broken_granted_width_fails(tmp_path):
    profile = _profile(tmp_path, "dword-broken", faults=[{"name": "width_fails", "width": 4}])
    code, rows, out = run_suites(profile, tmp_path, areas=AREAS)
    failed = [r for r in rows if r["outcome"] == "fail"]
    assert code == 1 and any(r["rule"] == "region.access-widths" for r in failed), out[-3000:]
