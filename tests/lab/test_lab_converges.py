"""consumer.qemu-converges predicted by the harness equals what QEMU 10 itself does, on three drivers.

The harness's QEMU source scenario (suites/consumers/test_qemu.py, suitelib/consumers.py
Qemu.pending_exact) says whether QEMU's pre-copy reaches switch-over; the consumer lane runs QEMU 10
(Debian trixie) in the lab guest and traces its exact pending-size queries
(vfio_state_pending_exact). Both run on:

- mtty: converges (MIG_DATA_SIZE answers 96 bytes);
- mtty_noinfo: VFIO_MIG_GET_PRECOPY_INFO fails; QEMU swallows it (0 initial, 0 dirty bytes) and
  still converges: the suites fail precopy.info-works-in-precopy, not consumer.qemu-converges;
- mtty_nosize: MIG_DATA_SIZE fails in PRE_COPY; QEMU swallows it, counts 100 GiB in every exact
  query and never switches over (the lane cancels it after its deadline): both say fail.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from vfio_conform.qemu_lab.consumer_verdict import CONVERGES, QEMU_FALLBACK_STOP_COPY
from vfio_conform.qemu_lab.consumers import run_consumers
from vfio_conform.qemu_lab.harness import run_lab
from vfio_conform.results import ResultStore

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent
PROFILES = {"mtty": "mtty", "mtty-noinfo": str(HERE / "profiles" / "mtty-noinfo.yaml"),
            "mtty-nosize": str(HERE / "profiles" / "mtty-nosize.yaml")}
#: What QEMU does, per profile: converges (True) or not (False).
EXPECTED = {"mtty": True, "mtty-noinfo": True, "mtty-nosize": False}


def _harness_prediction(rows: list[dict]) -> dict[str, bool]:
    """profile -> the source scenario's verdict on convergence (False: it failed consumer.qemu-converges)."""
    out = {}
    for r in rows:
        if not r["test_id"].startswith("test_consumer_qemu_source["):
            continue
        profile = r["test_id"].split("[", 1)[1].rstrip("]")
        assert r["outcome"] in ("pass", "fail"), r
        out[profile] = not (r["outcome"] == "fail" and r["rule"] == CONVERGES)
        if r["outcome"] == "fail" and r["rule"] != CONVERGES:
            raise AssertionError(f"the source scenario failed {r['rule']} on {profile}: {r['message']}")
    return out


def test_consumer_qemu_converges_agrees_with_qemu_10(qemu_chroot_possible, tmp_path: Path) -> None:
    t0 = time.monotonic()
    real = run_consumers(list(PROFILES.values()), tmp_path / "qemu")
    print(f"\nconsumer lane: {time.monotonic() - t0:.1f}s")
    records = {r.test_id: r for v in real.verdicts for r in v.records}
    measured = {}
    for name in PROFILES:
        rec = records.get(f"consumer_qemu_converges[{name}:x-device-dirty-page-tracking=off]")
        assert rec is not None and rec.outcome.value in ("pass", "fail"), (name, rec)
        measured[name] = rec.outcome.value == "pass"
        assert "exact pending-size queries" in rec.message, rec.message   # QEMU did ask
    assert measured == EXPECTED, {n: records[f"consumer_qemu_converges[{n}:x-device-dirty-page-tracking=off]"]
                                  .message for n in PROFILES}
    stuck = records["consumer_qemu_converges[mtty-nosize:x-device-dirty-page-tracking=off]"]
    assert "did not converge" in stuck.message and str(QEMU_FALLBACK_STOP_COPY) in stuck.message, stuck.message
    # the migrations that converged delivered the device state
    for name in ("mtty", "mtty-noinfo"):
        assert records[f"consumer_qemu_migrate[{name}:x-device-dirty-page-tracking=off]"].outcome.value == "pass"

    t1 = time.monotonic()
    run_lab(list(PROFILES.values()), tmp_path / "suites", workers=None,
            extra=["-k", "test_consumer_qemu_source and not abort and not precopy_info"], timeout=1200)
    print(f"harness in the lab: {time.monotonic() - t1:.1f}s")
    store = ResultStore(tmp_path / "suites" / "results.sqlite")
    rows = [r for run in store.runs(limit=20) for r in store.results(run["id"])]
    predicted = _harness_prediction(rows)
    assert predicted == EXPECTED == measured, (predicted, measured)
    failed = [r for r in rows if r["outcome"] == "fail"]
    assert [r["rule"] for r in failed] == [CONVERGES] and "100 GiB" in failed[0]["message"], failed
