"""The SQLite store keeps every row committed, so an interrupted run loses nothing recorded."""
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from vfio_conform.base.exitcodes import Exit, combine, verdict
from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord, import_runs
from vfio_conform.results.liveness import Here, judge


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
        import os, socket
        from vfio_conform.results.liveness import boot_id
        s = ResultStore({str(path)!r})
        run = s.begin_run(RunMeta('p','sim','d','drv','k','0',socket.gethostname(),'s',
                                  pid=os.getpid(), boot_id=boot_id()))
        for i in range(3):
            s.record(run, TestRecord(f'n{{i}}', f't{{i}}', Outcome.PASS, 0.0))
        print('ready', flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    reader = ResultStore(path, readonly=True)
    (run,) = reader.runs()
    assert (run["status"], run["reason"]) == ("incomplete", "killed")     # shown, not written
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT status FROM runs").fetchone() == ("running",)
    reader.close()
    store = ResultStore(path)                                             # a writer marks it
    assert raw.execute("SELECT status, reason FROM runs").fetchone() == ("incomplete", "killed")
    raw.close()
    assert store.summary(run["id"]) == {"pass": 3} and store.run(run["id"])["ended"]
    store.close()


def _row(**kw):
    base = dict(status="running", reason=None, host="h", pid=4242, boot_id="boot-a")
    base.update(kw)
    return base


def test_judge_a_running_run():
    here = Here(host="h", boot="boot-a", alive=lambda pid: pid == 4242)
    assert judge(_row(), here) == ("running", "")                                    # alive
    assert judge(_row(pid=99), here) == ("incomplete", "killed")                     # pid gone
    assert judge(_row(boot_id="boot-b"), here) == ("incomplete", "host-restarted")   # rebooted
    assert judge(_row(host="other", pid=99), here) == ("running", "")                # cannot tell
    assert judge(_row(pid=None), here) == ("running", "")                            # old row
    assert judge(_row(status="finished", pid=99), here) == ("finished", "")
    assert judge(_row(status="interrupted"), here) == ("incomplete", "interrupted")  # old status
    assert judge(_row(status="crashed"), here) == ("incomplete", "crashed")


def test_end_run_statuses(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    a, b, c = (store.begin_run(_meta()) for _ in range(3))
    store.end_run(a, "finished")
    store.end_run(b, "incomplete", "empty")
    store.end_run(c, "crashed")                      # a bare reason means incomplete
    got = {r["id"]: (r["status"], r["reason"]) for r in store.runs()}
    assert got == {a: ("finished", ""), b: ("incomplete", "empty"), c: ("incomplete", "crashed")}
    with pytest.raises(ValueError):
        store.end_run(a, "done")


def test_exit_code_precedence():
    assert verdict(["pass", "known-issue", "not-supported", "gated"], True) == Exit.CONFORMANT
    assert verdict(["pass", "fail", "infra-error"], False) == Exit.NONCONFORMANT
    assert verdict(["pass", "infra-error"], True) == Exit.INCOMPLETE
    assert verdict(["pass", "skipped"], True) == Exit.INCOMPLETE
    assert verdict(["pass"], False) == Exit.INCOMPLETE
    assert combine([0, 3, 1]) == Exit.NONCONFORMANT and combine([0, 3]) == Exit.INCOMPLETE
    assert combine([1, 2]) == Exit.USAGE and combine([0, 0]) == Exit.CONFORMANT and combine([5]) == 3


def test_import_from_merges_runs(tmp_path):
    a, b = ResultStore(tmp_path / "a.sqlite"), ResultStore(tmp_path / "b.sqlite")
    run = b.begin_run(_meta(profile="mtty", started=time.time()))
    b.record(run, TestRecord("n", "t", Outcome.FAIL, 1.0, "boom"))
    b.end_run(run, "finished")
    b.close()
    (new,) = import_runs(a, tmp_path / "b.sqlite")
    assert a.runs()[0]["profile"] == "mtty" and a.results(new)[0]["message"] == "boom"
