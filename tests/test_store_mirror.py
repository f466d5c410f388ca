"""--store-mirror: a whole, readable copy of the SQLite store follows a run, so a machine that dies
mid-run (the lab guest) still leaves the results recorded up to a few seconds before."""
import os
import signal
import sqlite3
import time
from types import SimpleNamespace

import pytest

from run_cli import popen, vc
from vfio_conform.qemu_lab.crash import read_progress
from vfio_conform.plugin.store_mirror import journal_path, register
from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord
from vfio_conform.results.journal import Journal, replay

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


def test_killed_run_loses_nothing_once_its_journal_is_replayed(tmp_path):
    store, mirror = tmp_path / "local" / "results.sqlite", tmp_path / "share" / "results.sqlite"
    progress = tmp_path / "progress"
    proc = popen("run", "--profile", PROFILE, "-q", "--store", store, "--store-mirror", mirror,
                 "--progress-file", progress)
    deadline = time.monotonic() + 120
    while len(read_progress(progress).started) < 40 and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stdout.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    started = read_progress(progress).started     # the tests it started, after the selection lines
    runs, copied = _rows(mirror)                 # the copy taken when the run began: a whole file
    assert [r[2] for r in runs] == ["running"] and copied == []
    snapshot = ResultStore(mirror)
    added = replay(snapshot, journal_path(mirror))
    snapshot.close()
    runs, nodeids = _rows(mirror)
    _, stored = _rows(store)
    # everything the store had, but for a result the kill caught between the store and the journal
    assert added == len(nodeids) and stored[:len(nodeids)] == nodeids and len(nodeids) >= len(stored) - 1
    assert nodeids == started[:len(nodeids)] and len(nodeids) >= len(started) - 1
    assert [r[2] for r in runs] == ["incomplete"]   # its writer is dead: never reads as finished


def test_replay_adds_only_what_the_copy_lacks(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    run_id = store.begin_run(RunMeta(profile="p", backend="sim", devices="a,b", driver="", kernel="k",
                                     harness_version="0", host="h", session="s"))
    journal = Journal(tmp_path / "j")
    recs = [TestRecord(nodeid=f"t{i}", test_id=f"t{i}", outcome=Outcome.PASS, duration=0.1)
            for i in range(5)]
    for rec in recs[:2]:
        store.record(run_id, rec)
    for rec in recs:
        journal.append(run_id, rec)
    journal.append(run_id + 7, recs[0])          # a run the copy does not have: ignored
    journal.close()
    with open(tmp_path / "j", "a") as f:
        f.write('{"run": 1, "rec')                # torn by the crash: ignored
    assert replay(store, tmp_path / "j") == 3
    assert [r["nodeid"] for r in store.results(run_id)] == [f"t{i}" for i in range(5)]
    assert replay(store, tmp_path / "j") == 0    # idempotent
    store.close()


def test_a_store_that_is_not_sqlite_is_refused():
    config = SimpleNamespace(getoption=lambda name, default=None: {"vc_store_mirror": "/x/m.sqlite"}[name])
    with pytest.raises(pytest.UsageError, match="needs a SQLite result store"):
        register(config, object(), SimpleNamespace(listeners=[]))


def test_journal_lines_fit_one_pipe_write():
    from vfio_conform.results.journal import MAX_LINE, encode
    long = TestRecord(nodeid="t", test_id="t", outcome=Outcome.FAIL, duration=1.0, message="x" * 20000,
                      waiver_reason="y" * 9000, rules=("fsm.legal-arc",))
    line = encode(3, long)
    assert len(line) <= MAX_LINE and line.endswith(b"\n")
    short = TestRecord(nodeid="s", test_id="s", outcome=Outcome.PASS, duration=0.1, message="ok")
    assert b'"message":"ok"' in encode(3, short)                     # short ones are whole


def test_two_runs_sharing_a_store_and_a_mirror(tmp_path):
    """The lab's worker processes: one store, one mirror, one journal; each run keeps its results."""
    store, mirror = tmp_path / "local" / "results.sqlite", tmp_path / "share" / "results.sqlite"
    journal = tmp_path / "share" / "journal"
    procs = [popen("run", "--profile", name, "-q", "--store", store, "--store-mirror", mirror,
                   "--store-journal", journal) for name in ("sim-p2p", "sim-stop-copy")]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:]
    runs, nodeids = _rows(mirror)
    assert sorted(r[1] for r in runs) == ["sim-p2p", "sim-stop-copy"]
    assert [r[2] for r in runs] == ["finished", "finished"]
    assert sorted(nodeids) == sorted(_rows(store)[1])
    snapshot = ResultStore(mirror)
    assert replay(snapshot, journal) == 0            # the last copy already holds every result
    snapshot.close()


def _open_at_once(path, barrier):
    barrier.wait()
    ResultStore(path).close()


def test_runs_creating_one_store_at_once_all_open_it(tmp_path):
    """Four processes opening one new store together: the WAL switch and the schema (with its added
    columns) are made once, and none of them fails."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    failures = 0
    for i in range(5):
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_at_once, args=(tmp_path / f"s{i}.sqlite", barrier))
                 for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        failures += sum(proc.exitcode != 0 for proc in procs)
    assert failures == 0
