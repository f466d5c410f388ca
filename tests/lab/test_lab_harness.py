"""The harness itself in the lab: it catches a deliberately broken real driver, and a guest that
dies mid-run leaves every recorded result plus an infra-error naming the test it was running."""
from __future__ import annotations

from pathlib import Path

import pytest

from vfio_conform.qemu_lab.harness import run_lab
from vfio_conform.results import ResultStore

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _rows(store_path: Path) -> list[dict]:
    store = ResultStore(store_path)
    return [r for run in store.runs() for r in store.results(run["id"])]


def test_harness_reports_the_broken_mtty(lab_prepared, tmp_path):
    """mtty_broken returns a data_fd on STOP_COPY->STOP: the arc matrix must fail on that rule."""
    (run,) = run_lab([str(HERE / "profiles" / "mtty-broken.yaml")], tmp_path, workers=None,
                     extra=["-k", "test_arc and STOP_COPY"])
    assert run.exit_code == 1, run
    rows = {r["test_id"]: r for r in _rows(tmp_path / "results.sqlite")}
    bad = rows["test_arc[mtty-broken:STOP_COPY->STOP]"]
    assert bad["outcome"] == "fail" and bad["rule"] == "fsm.no-data-fd-otherwise", bad
    others = [r for t, r in rows.items() if r["outcome"] == "fail" and t != bad["test_id"]]
    assert not others, others
    assert rows["test_arc[mtty-broken:STOP->STOP_COPY]"]["outcome"] == "pass"


def test_guest_crash_keeps_results_and_names_the_test(lab_prepared, tmp_path):
    """A kernel panic in the 3rd test: 2 results kept, then one infra-error naming the 3rd."""
    (run,) = run_lab(["mtty"], tmp_path, workers=None,
                     extra=["-p", "crash_plugin", "-k", "test_arc and RUNNING"],
                     env={"PYTHONPATH": f"{ROOT}:{HERE}"}, timeout=900)
    assert run.exit_code is None and "panic" in run.error.lower(), run
    rows = _rows(tmp_path / "results.sqlite")
    outcomes = [r["outcome"] for r in rows]
    assert outcomes[:2] == ["pass", "pass"], rows
    assert outcomes[-1] == "infra-error" and "lab-guest-died" in rows[-1]["test_id"], rows[-1]
    assert "test_arc" in rows[-1]["message"], rows[-1]
    (stored,) = ResultStore(tmp_path / "results.sqlite").runs()
    assert (stored["status"], stored["reason"]) == ("incomplete", "crashed")
