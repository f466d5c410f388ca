"""A store written before results carried the record's fields stays readable (results, report,
diff) and is migrated when opened for writing."""
import sqlite3
import subprocess
import sys

from suite_runner import ROOT
from vfio_conform.report.matrix import build_matrix
from vfio_conform.report.outcomes import SHOULD_UNMET, shown
from vfio_conform.results import Outcome, ResultStore, TestRecord
from vfio_conform.results.sql import ADDED_RESULT_COLUMNS

#: The schema of the previous harness version (results without the record's added fields).
OLD_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL, profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT,
    kernel TEXT, harness_version TEXT, host TEXT, argv TEXT,
    started REAL NOT NULL, ended REAL, status TEXT NOT NULL DEFAULT 'running',
    profile_hash TEXT, firmware TEXT, reason TEXT, pid INTEGER, boot_id TEXT
);
CREATE TABLE results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    nodeid TEXT NOT NULL, test_id TEXT NOT NULL, outcome TEXT NOT NULL,
    duration REAL, message TEXT, rule TEXT, link TEXT, recorded REAL NOT NULL
);
"""


def _old_store(path):
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for run, session in ((1, "s1"), (2, "s2")):
        db.execute("INSERT INTO runs (id, session, profile, host, started, ended, status) "
                   "VALUES (?, ?, 'p', 'h', 1.0, 2.0, 'finished')", (run, session))
        rows = [("suites/fsm/test_arcs.py::test_arc[p:RUNNING->STOP]", "test_arc[p:RUNNING->STOP]",
                 "pass" if run == 1 else "fail", "", "fsm.legal-arc"),
                ("suites/data/test_precopy.py::test_x[p]", "test_x[p]", "pass",
                 "should not met: [precopy.initial-bytes-decrease] grew", "precopy.initial-bytes-decrease")]
        for nodeid, tid, outcome, msg, rule in rows:
            db.execute("INSERT INTO results (run_id, nodeid, test_id, outcome, duration, message, rule, "
                       "link, recorded) VALUES (?, ?, ?, ?, 0.1, ?, ?, '', 1.5)",
                       (run, nodeid, tid, outcome, msg, rule))
    db.commit()
    db.close()


def test_old_rows_read_with_the_record_fields(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    store = ResultStore(path, readonly=True)
    rows = store.results(1)
    store.close()
    arc, should = rows
    assert (arc["arc_from"], arc["arc_to"], arc["should"]) == ("RUNNING", "STOP", "")
    assert should["should"] == "precopy.initial-bytes-decrease" and shown(should) == SHOULD_UNMET
    assert build_matrix(rows).outcome("RUNNING", "STOP") == "pass"
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(results)")}
    assert not cols & {n for n, _ in ADDED_RESULT_COLUMNS}     # reading changed nothing


def test_report_and_diff_read_an_old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    out = tmp_path / "r.html"
    rep = subprocess.run([sys.executable, "-m", "vfio_conform", "report", "1", "--store", str(path),
                          "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert 'data-outcome="should-unmet"' in out.read_text()
    dif = subprocess.run([sys.executable, "-m", "vfio_conform", "diff", "1", "2", "--store", str(path),
                          "--no-html"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert dif.returncode == 1, dif.stdout + dif.stderr              # RUNNING->STOP newly fails
    assert "test_arc[p:RUNNING->STOP]" in dif.stdout


def test_opening_an_old_store_for_writing_adds_the_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_store(path)
    store = ResultStore(path)
    store.record(1, TestRecord("n::t", "t[p:odd]", Outcome.PASS, 0.1, profile="p", arc_from="STOP",
                               arc_to="RUNNING", rules=("fsm.legal-arc",), devices=("d0", "d1")))
    rows = store.results(1)
    store.close()
    assert rows[0]["arc_from"] == "RUNNING"                  # old row: filled on read
    assert (rows[-1]["arc_from"], rows[-1]["arc_to"], rows[-1]["devices"]) == ("STOP", "RUNNING", "d0,d1")
    assert build_matrix(rows).outcome("STOP", "RUNNING") == "pass"
