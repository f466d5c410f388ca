"""A device operation that no signal can interrupt (an ioctl in D state) is reported by the watchdog
thread before anything kills the process: "hung in <operation> on <device> since <time>" in the
store, on stderr, in the JUnit file and the Allure results, the device retired, and the recovery
file `fleet run` names gets the line (tests/test_fleet.py shows the place marked for recovery).

The hang: tests/vc_plugins/vc_hang.py with VC_HANG_UNINTERRUPTIBLE=1 blocks SIGALRM, SIGTERM and
SIGINT in the thread for the duration of the operation, so the SIGALRM timeout cannot interrupt it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from run_cli import _argv, env, sqlite_rows, ROOT
from suite_runner import write_profile

HUNG = re.compile(r"hung in SET MIG_DEVICE_STATE STOP on sim0 since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _wait(predicate, timeout: float, what: str, proc) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended ({proc.returncode}) before {what}: {proc.communicate()[0][-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _results(store: Path) -> list[dict]:
    """The store's result rows (none while the run is still creating it)."""
    try:
        return sqlite_rows(store, "SELECT * FROM results ORDER BY id") if store.exists() else []
    except sqlite3.OperationalError:
        return []


@pytest.mark.parametrize("workers", [(), ("-n", "1")], ids=["one-process", "xdist-worker"])
def test_uninterruptible_hang_is_reported_before_the_kill(tmp_path, workers):
    profile = write_profile(tmp_path, "sim-p2p", "hangs", timeouts={"test": 1.0, "io": 1.0})
    store, reports, recovery = tmp_path / "r.sqlite", tmp_path / "reports", tmp_path / "recovery"
    argv = _argv(["run", "--profile", str(profile), "-q", "--store", str(store), "--reports", str(reports),
                  *workers, "--", "-p", "vc_hang", "-k", "test_arc and RUNNING"])
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env(VC_HANG_TEST="hangs:RUNNING->STOP]", VC_HANG_UNINTERRUPTIBLE="1",
                                    VFIO_CONFORM_RECOVERY_FILE=str(recovery)),
                            start_new_session=True)
    try:
        rows = lambda: [r for r in _results(store) if "hung in" in (r["message"] or "")]  # noqa: E731
        _wait(rows, 120, "the hang in the store", proc)
        elapsed = time.monotonic() - t0
        (row,) = rows()
        assert row["outcome"] == "infra-error" and row["test_id"] == "test_arc[hangs:RUNNING->STOP]"
        assert HUNG.search(row["message"]), row["message"]
        assert proc.poll() is None            # still stuck: the timeout could not interrupt it
        assert HUNG.search(recovery.read_text())
        (junit,) = reports.rglob("junit.xml")
        error = ET.parse(junit).getroot().find("testsuite/testcase/error")
        assert HUNG.search(error.get("message")) and error.get("type") == "infra-error"
        (allure,) = [json.loads(p.read_text()) for p in reports.rglob("*-result.json")
                     if "hung in" in p.read_text()]
        assert allure["status"] == "broken" and allure["name"] == "test_arc[hangs:RUNNING->STOP]"
        # built as the listener builds a result (allure-python-commons' model): filed under its
        # profile and rule categories, its arc, and the operation that never returned as a step
        labels = {(label["name"], label["value"]) for label in allure["labels"]}
        assert {("profile", "hangs"), ("outcome", "infra-error"), ("arc", "RUNNING->STOP")} <= labels
        assert allure["fullName"].endswith("#test_arc") and allure["testCaseId"]
        assert allure["steps"][-1]["status"] == "broken"
        assert allure["steps"][-1]["name"].endswith("on sim0: never returned"), allure["steps"]
        assert elapsed < 60, elapsed
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # what the CI job's own timeout does
        out, _ = proc.communicate(timeout=30)
    if not workers:                           # a worker's stderr does not reach the job log
        assert HUNG.search(out) and "the device is retired" in out, out[-3000:]


def test_an_interruptible_hang_is_left_to_the_timeout(tmp_path):
    """The ordinary hang (SIGALRM interrupts it): the timeout reports it, the watchdog says nothing."""
    profile = write_profile(tmp_path, "sim-p2p", "hangs", timeouts={"test": 1.0, "io": 1.0})
    store = tmp_path / "r.sqlite"
    proc = subprocess.run(_argv(["run", "--profile", str(profile), "-q", "--store", str(store), "--",
                                 "-p", "vc_hang", "-k", "test_arc and RUNNING"]), cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env(VC_HANG_TEST="hangs:RUNNING->STOP]"))
    assert proc.returncode == 3, proc.stdout[-2000:]
    messages = [r["message"] or "" for r in sqlite_rows(store, "SELECT * FROM results")]
    assert any("never returned" in m for m in messages)
    assert not any("hung in" in m for m in messages) and "hung in" not in proc.stderr


def test_the_device_is_retired_for_the_rest_of_the_run(tmp_path):
    """When the operation finally returns, the run goes on without the device: its later tests are
    infra-errors naming the hang, and the run ends."""
    profile = write_profile(tmp_path, "sim-p2p", "hangs", timeouts={"test": 1.0, "io": 1.0})
    store = tmp_path / "r.sqlite"
    proc = subprocess.run(_argv(["run", "--profile", str(profile), "-q", "--store", str(store), "--",
                                 "-p", "vc_hang", "-k", "test_arc and RUNNING"]), cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env=env(VC_HANG_TEST="hangs:RUNNING->STOP]", VC_HANG_UNINTERRUPTIBLE="1",
                                  VC_HANG_SECONDS="6"))
    assert proc.returncode == 3, proc.stdout[-2000:]
    rows = sqlite_rows(store, "SELECT * FROM results ORDER BY id")
    first = next(i for i, r in enumerate(rows) if "hung in" in (r["message"] or ""))
    later = [r for r in rows[first + 1:] if r["test_id"] != "test_arc[hangs:RUNNING->STOP]"]
    assert len(later) > 5 and all(r["outcome"] == "infra-error" and "retired: hung in" in r["message"]
                                  for r in later), later[:3]
    assert HUNG.search(proc.stderr)
    (run,) = sqlite_rows(store, "SELECT * FROM runs")
    assert run["status"] == "finished"
