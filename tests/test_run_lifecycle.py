"""A run's lifecycle and exit code, end to end: `python3 -m vfio_conform run` in a subprocess.

0 conformant, 1 spec violation, 2 usage error (nothing run), 3 infra error or incomplete run;
a run that does not finish is stored `incomplete` with the reason.
"""
import time

import pytest

from run_cli import sqlite_rows, vc
from suite_runner import write_profile
from vfio_conform.backends.sim.faults import CORE_FAULTS

ARCS = ("--", "-k", "test_arc and RUNNING")


def _runs(store):
    return sqlite_rows(store, "SELECT * FROM runs ORDER BY id")


def _results(store, run_id=None):
    where = f" WHERE run_id = {int(run_id)}" if run_id else ""
    return sqlite_rows(store, f"SELECT * FROM results{where} ORDER BY id")


def test_conformant_run_exits_0_and_is_finished(tmp_path):
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "--store", store, *ARCS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (run,) = _runs(store)
    assert run["status"] == "finished" and not run["reason"] and run["pid"] and run["boot_id"]
    assert "sim-p2p: run #1 finished" in proc.stdout and "exit 0: conformant" in proc.stdout


def test_spec_violation_exits_1(tmp_path):
    fault = sorted(CORE_FAULTS)[0]
    profile = write_profile(tmp_path, "sim-p2p-precopy", "broken", faults=[{"name": fault}])
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", profile, "-q", "--store", store, "--", "-k", "fsm or data")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert any(r["outcome"] == "fail" for r in _results(store))
    assert _runs(store)[0]["status"] == "finished"


def test_stopped_early_is_partial(tmp_path):
    """-x stops at the first violation: exit 1 (a violation is a fact), the run is incomplete."""
    fault = sorted(CORE_FAULTS)[0]
    profile = write_profile(tmp_path, "sim-p2p-precopy", "broken", faults=[{"name": fault}])
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", profile, "-q", "--store", store, "--", "-x", "-k", "fsm or data")
    assert proc.returncode == 1, proc.stdout[-3000:]
    (run,) = _runs(store)
    assert (run["status"], run["reason"]) == ("incomplete", "partial")


def test_no_test_ran_is_incomplete_and_exits_3(tmp_path):
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "--store", store, "--", "-k", "zzz")
    assert proc.returncode == 3, proc.stdout[-2000:]
    (run,) = _runs(store)
    assert (run["status"], run["reason"]) == ("incomplete", "empty")
    assert "incomplete (empty" in proc.stdout


def test_internal_error_is_incomplete_crashed_and_keeps_rows(tmp_path):
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "--store", store, "-p", "vc_internal_error", *ARCS,
              VC_CRASH_AFTER="3")
    assert proc.returncode == 3, proc.stdout[-3000:]
    assert "INTERNALERROR" in proc.stdout + proc.stderr
    (run,) = _runs(store)
    assert (run["status"], run["reason"]) == ("incomplete", "crashed")
    assert len(_results(store)) >= 2


def test_collection_error_is_incomplete_and_exits_3(tmp_path):
    bad = tmp_path / "test_broken_suite.py"
    bad.write_text("import no_such_module_anywhere\n")
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "--store", store, "--", str(bad))
    assert proc.returncode == 3, proc.stdout[-3000:]
    (run,) = _runs(store)
    assert (run["status"], run["reason"]) == ("incomplete", "collection-error")


def test_bad_profile_exits_2_and_writes_nothing(tmp_path):
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", "no-such-profile", "--store", store)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert not store.exists()


def test_timeout_is_infra_error_naming_the_operation_and_the_run_goes_on(tmp_path):
    """A test that hangs in a device operation: infra-error naming it, the device retired for the
    rest of the run (its later tests infra-errors naming the operation), every test recorded."""
    profile = write_profile(tmp_path, "sim-p2p", "hangs", timeouts={"test": 1.0, "io": 1.0})
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", profile, "-q", "--store", store, "-p", "vc_hang", *ARCS,
              VC_HANG_TEST="hangs:RUNNING->STOP]")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3 and "INTERNALERROR" not in out, out[-3000:]
    results = _results(store)
    rows = {r["test_id"]: r for r in results}
    hung = rows["test_arc[hangs:RUNNING->STOP]"]
    assert hung["outcome"] == "infra-error", hung
    assert "timeouts.test = 1s" in hung["message"] and "SET MIG_DEVICE_STATE STOP" in hung["message"]
    assert "never returned" in hung["message"]
    after = results[[r["test_id"] for r in results].index(hung["test_id"]) + 1:]
    assert len(after) > 5 and all(r["outcome"] == "infra-error" and "retired" in r["message"]
                                  and "SET MIG_DEVICE_STATE STOP" in r["message"] for r in after), after[:3]
    (run,) = _runs(store)
    assert run["status"] == "finished"


def test_hung_device_is_retired_and_the_other_profile_carries_on(tmp_path):
    """Two profiles in one process: an operation of the first's device never returns; that device
    is retired (infra-error naming the operation), and every test of the second still runs and passes."""
    hangs = write_profile(tmp_path, "sim-p2p", "hangs", timeouts={"test": 1.0, "io": 1.0})
    fine = write_profile(tmp_path, "sim-p2p", "fine", timeouts={"test": 1.0, "io": 1.0})
    store = tmp_path / "r.sqlite"
    t0 = time.monotonic()
    proc = vc("run", "--profile", hangs, "--profile", fine, "-q", "--store", store, "-p", "vc_hang",
              *ARCS, VC_HANG_TEST="hangs:RUNNING->STOP]", VC_HANG_RESET="1")
    elapsed = time.monotonic() - t0
    assert proc.returncode == 3, (proc.stdout + proc.stderr)[-3000:]
    rows = _results(store)
    by_profile = {name: [r for r in rows if f"[{name}:" in r["test_id"]] for name in ("hangs", "fine")}
    hung = next(r for r in by_profile["hangs"] if r["test_id"] == "test_arc[hangs:RUNNING->STOP]")
    assert hung["outcome"] == "infra-error" and "never returned" in hung["message"], hung
    later = by_profile["hangs"][by_profile["hangs"].index(hung) + 1:]
    assert later and all(r["outcome"] == "infra-error" and "retired" in r["message"]
                         and "SET MIG_DEVICE_STATE STOP" in r["message"] for r in later), later[:3]
    assert len(by_profile["fine"]) == len(by_profile["hangs"]) > 20
    assert {r["outcome"] for r in by_profile["fine"]} <= {"pass", "not-supported"}, by_profile["fine"]
    assert elapsed < 60, elapsed        # one timeout; the retired device's reset is never tried


def test_timeout_with_a_device_that_cannot_be_reset_retires_it(tmp_path):
    profile = write_profile(tmp_path, "sim-p2p", "wedged", timeouts={"test": 1.0, "io": 0.5})
    store = tmp_path / "r.sqlite"
    t0 = time.monotonic()
    proc = vc("run", "--profile", profile, "-q", "--store", store, "-p", "vc_hang", *ARCS,
              VC_HANG_TEST="wedged:RUNNING->STOP]", VC_HANG_RESET="1")
    elapsed = time.monotonic() - t0
    assert proc.returncode == 3, (proc.stdout + proc.stderr)[-3000:]
    rows = _results(store)
    after = rows[[r["test_id"] for r in rows].index("test_arc[wedged:RUNNING->STOP]") + 1:]
    retired = [r for r in after if "retired" in (r["message"] or "")]
    assert retired and all(r["outcome"] in ("infra-error", "not-supported") for r in after), after[:5]
    assert not [r for r in rows if r["outcome"] == "fail"]
    assert elapsed < 60, elapsed      # one timeout and one failed recovery, not one per test


@pytest.mark.parametrize("extra", [(), ("-n", "2")])
def test_plain_pytest_follows_the_same_exit_codes(tmp_path, extra):
    """Plain pytest with the plugin follows the same mapping (the lab runs pytest in its guest)."""
    import subprocess
    import sys
    from run_cli import ROOT, env
    store = tmp_path / "r.sqlite"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"), "--rootdir", str(ROOT),
                           "-q", "-p", "no:cacheprovider", "--vc-profile", "sim-p2p", "--vc-store",
                           str(store), *extra, "-k", "zzz"], capture_output=True, text=True,
                          cwd=ROOT, env=env(), timeout=300)
    assert proc.returncode == 3, proc.stdout[-2000:]


def test_a_crashed_worker_leaves_an_infra_error_not_a_gap(tmp_path):
    """xdist replaces a worker that died in a test; that test is recorded as infra-error."""
    store = tmp_path / "r.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "-n", "2", "--store", store, "-p", "vc_worker_crash",
              *ARCS, VC_CRASH_TEST="sim-p2p:RUNNING->STOP]")
    assert proc.returncode == 3, proc.stdout[-3000:]
    rows = {r["test_id"]: r for r in _results(store)}
    crashed = [r for t, r in rows.items() if "RUNNING->STOP]" in t]
    assert crashed and crashed[0]["outcome"] == "infra-error" and "crashed" in crashed[0]["message"], crashed
