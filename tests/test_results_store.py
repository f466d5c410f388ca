"""The SQLite store keeps every row committed, so an interrupted run loses nothing recorded."""
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord


def _meta(**kw):
    base = dict(profile="p", backend="sim", devices="sim0", driver="sim", kernel="k",
                harness_version="0", host="h", session="s")
    base.update(kw)
    return RunMeta(**base)


def test_rows_are_visible_to_another_connection_at_once(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    run = store.begin_run(_meta())
    store.record(run, TestRecord("n::t[a]", "t[a]", Outcome.KNOWN_ISSUE, 0.1, "m", "rule", "http://x"))
    other = sqlite3.connect(tmp_path / "r.sqlite")
    assert other.execute("SELECT outcome, link FROM results").fetchall() == [("known-issue", "http://x")]
    assert store.summary(run) == {"known-issue": 1}


def test_killed_writer_keeps_recorded_rows(tmp_path):
    path = tmp_path / "r.sqlite"
    script = textwrap.dedent(f"""
        import time
        from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord
        s = ResultStore({str(path)!r})
        run = s.begin_run(RunMeta('p','sim','d','drv','k','0','h','s'))
        for i in range(3):
            s.record(run, TestRecord(f'n{{i}}', f't{{i}}', Outcome.PASS, 0.0))
        print('ready', flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    store = ResultStore(path)
    (run,) = store.runs()
    assert run["status"] == "running" and run["ended"] is None
    assert store.summary(run["id"]) == {"pass": 3}


def test_import_from_merges_runs(tmp_path):
    a, b = ResultStore(tmp_path / "a.sqlite"), ResultStore(tmp_path / "b.sqlite")
    run = b.begin_run(_meta(profile="mtty", started=time.time()))
    b.record(run, TestRecord("n", "t", Outcome.FAIL, 1.0, "boom"))
    b.end_run(run, "finished")
    b.close()
    (new,) = a.import_from(tmp_path / "b.sqlite")
    assert a.runs()[0]["profile"] == "mtty" and a.results(new)[0]["message"] == "boom"
