"""--store-mirror: a whole, readable copy of the SQLite store follows a run, so a machine that dies
mid-run (the lab guest) still leaves the results recorded up to a few seconds before."""
import os
import signal
import sqlite3
import time
from types import SimpleNamespace

import pytest

from run_cli import popen, vc
from vfio_conform.plugin.store_mirror import StoreMirror, register
from vfio_conform.results import ResultStore

PROFILE = "sim-p2p"


def _rows(path) -> tuple[list[tuple], list[str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        runs = db.execute("SELECT id, profile, status FROM runs ORDER BY id").fetchall()
        nodeids = [r[0] for r in db.execute("SELECT nodeid FROM results ORDER BY id")]
    finally:
        db.close()
    return runs, nodeids


def test_finished_run_leaves_the_same_rows_in_the_mirror(tmp_path):
    store, mirror = tmp_path / "local" / "results.sqlite", tmp_path / "share" / "results.sqlite"
    proc = vc("run", "--profile", PROFILE, "-q", "--store", store, "--store-mirror", mirror)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert _rows(mirror) == _rows(store)
    runs, nodeids = _rows(mirror)
    assert [r[2] for r in runs] == ["finished"] and len(nodeids) > 100
    assert not (mirror.parent / "results.sqlite.part").exists()


def test_killed_run_leaves_a_readable_mirror_of_what_was_recorded(tmp_path):
    store, mirror = tmp_path / "local" / "results.sqlite", tmp_path / "share" / "results.sqlite"
    progress = tmp_path / "progress"
    proc = popen("run", "--profile", PROFILE, "-q", "--store", store, "--store-mirror", mirror,
                 "--progress-file", progress, "--", "--vc-store-mirror-every", "0")
    deadline = time.monotonic() + 120
    while (not progress.exists() or len(progress.read_text().split()) < 40) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stdout.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    started = progress.read_text().split()
    runs, nodeids = _rows(mirror)              # a whole SQLite file, never a torn copy
    assert [r[2] for r in runs] == ["running"]   # the mirror never reads as finished
    _, stored = _rows(store)
    assert nodeids == stored[:len(nodeids)]
    # a copy after every test: at most the test in flight at the kill is missing
    assert len(nodeids) >= len(started) - 2, (len(nodeids), len(started))


def test_copies_at_most_every_interval(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    now = [100.0]
    mirror = StoreMirror(store, tmp_path / "m.sqlite", every=3.0, clock=lambda: now[0])
    report = SimpleNamespace(when="teardown")
    mirror.pytest_runtest_logreport(report)          # the first result is always copied
    now[0] += 1.0
    mirror.pytest_runtest_logreport(report)
    mirror.pytest_runtest_logreport(SimpleNamespace(when="call"))
    assert mirror.copies == 1
    now[0] += 2.5
    mirror.pytest_runtest_logreport(report)
    assert mirror.copies == 2 and (tmp_path / "m.sqlite").exists()
    store.close()


def test_a_store_that_is_not_sqlite_is_refused():
    config = SimpleNamespace(getoption=lambda name, default=None: {"vc_store_mirror": "/x/m.sqlite",
                                                                   "vc_store_mirror_every": None}[name])
    with pytest.raises(pytest.UsageError, match="needs a SQLite result store"):
        register(config, object())
