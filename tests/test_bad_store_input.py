"""Bad result-store input gives one line and exit 2 (3 when the store is lost mid-run), never a
traceback; readers open a store read-only. The table in docs/run-lifecycle.md is this test's
output: it fails when the documented messages drift (VC_UPDATE_DOCS=1 rewrites the table)."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from run_cli import ROOT, env, sqlite_rows, vc
from vfio_conform.report import sample
from vfio_conform.results import ResultStore

DOC = ROOT / "docs" / "run-lifecycle.md"
BEGIN, END = "<!-- bad-store-input:begin -->", "<!-- bad-store-input:end -->"
ROWS: dict[str, tuple[str, str, int, str]] = {}     # case -> (input, command, exit, message)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, ro=False) -> a fresh tmpfs directory; unmounted afterwards (needs root)."""
    mounted = []

    def mount(size: str, base: Path = tmp_path) -> Path:
        where = base / "mnt"
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(where)
        return where
    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _store_with_a_run(path: Path) -> int:
    store = ResultStore(path)
    run = sample.write_run(store, "sim-p2p", {}, session="S1")
    store.close()
    return run


def _one_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _row(case: str, what: str, cmd: str, proc, expect: int, message: str, tmp: Path) -> None:
    assert proc.returncode == expect, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    ROWS[case] = (what, cmd, expect, message.replace(str(tmp), "TMP"))


def _case_dir(tmp_path, tmpfs):
    proc = vc("run", "--profile", "sim-p2p", "--store", tmp_path)
    _row("dir", "`--store` names a directory", "run --store TMP", proc, 2, _one_line(proc), tmp_path)


def _case_corrupt(tmp_path, tmpfs):
    bad = tmp_path / "r.sqlite"
    bad.write_bytes(os.urandom(8192))
    proc = vc("run", "--profile", "sim-p2p", "--store", bad)
    _row("corrupt", "`--store` is not a SQLite file", "run --store TMP/r.sqlite", proc, 2,
         _one_line(proc), tmp_path)
    assert bad.stat().st_size == 8192
    proc = vc("results", "--store", bad)
    _row("corrupt-read", "the same, read by `results`", "results --store TMP/r.sqlite", proc, 2,
         _one_line(proc), tmp_path)


def _case_ro(tmp_path, tmpfs):
    mnt = tmpfs("4m", tmp_path)
    run = _store_with_a_run(mnt / "r.sqlite")
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    before = sorted(p.name for p in mnt.iterdir())
    proc = vc("run", "--profile", "sim-p2p", "--store", mnt / "r.sqlite")
    _row("ro", "`--store` on read-only media", "run --store TMP/mnt/r.sqlite", proc, 2,
         _one_line(proc), tmp_path)
    reader = vc("results", "--store", mnt / "r.sqlite")      # readers work on read-only media
    assert reader.returncode == 0 and f"#{run}" in reader.stdout and "finished" in reader.stdout, reader
    out = tmp_path / "report.html"
    assert vc("report", str(run), "--store", mnt / "r.sqlite", "--out", out).returncode == 0
    assert 'data-status="finished"' in out.read_text()
    assert sorted(p.name for p in mnt.iterdir()) == before


def test_reader_never_changes_the_store(tmp_path):
    """No WAL switch, no schema migration, no dead-run marking on read."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL,
        profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT, kernel TEXT, harness_version TEXT,
        host TEXT, argv TEXT, started REAL NOT NULL, ended REAL, status TEXT NOT NULL DEFAULT 'running');
        CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL,
        nodeid TEXT NOT NULL, test_id TEXT NOT NULL, outcome TEXT NOT NULL, duration REAL, message TEXT,
        rule TEXT, link TEXT, recorded REAL NOT NULL);
        INSERT INTO runs (session, profile, kernel, devices, started, status) VALUES
            ('s', 'p', 'k', 'd', 1.0, 'interrupted');""")
    db.commit()
    db.close()
    raw = path.read_bytes()
    proc = vc("results", "--store", path)
    assert proc.returncode == 0 and "incomplete(interrupted)" in proc.stdout, proc
    assert path.read_bytes() == raw and not Path(f"{path}-wal").exists()
    ResultStore(path).close()             # a writer migrates the old store
    cols = {r["name"] for r in sqlite_rows(path, "PRAGMA table_info(runs)")}
    assert {"reason", "pid", "boot_id"} <= cols


def _case_locked(tmp_path, tmpfs):
    path = tmp_path / "r.sqlite"
    _store_with_a_run(path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = vc("run", "--profile", "sim-p2p", "--store", path, VFIO_CONFORM_STORE_WAIT="0.5")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    _row("locked", "`--store` locked by another writer longer than the wait",
         "VFIO_CONFORM_STORE_WAIT=0.5 run --store TMP/r.sqlite", proc, 2, _one_line(proc), tmp_path)
    assert len(sqlite_rows(path, "SELECT id FROM runs")) == 1


def _case_full(tmp_path, tmpfs):
    mnt = tmpfs("64k", tmp_path)
    try:
        with open(mnt / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    proc = vc("run", "--profile", "sim-p2p", "--store", mnt / "r.sqlite")
    _row("full", "`--store` on a full disk", "run --store TMP/mnt/r.sqlite", proc, 2,
         _one_line(proc), tmp_path)


def _case_full_mid(tmp_path, tmpfs):
    """The store is lost mid-run: the run stops, exit 3, marked incomplete where still possible."""
    mnt = tmpfs("160k", tmp_path)
    proc = vc("run", "--profile", "sim-p2p", "-q", "--store", mnt / "r.sqlite")
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    lost = [ln for ln in proc.stdout.splitlines() if ln.startswith("store lost:")]
    assert lost, out[-3000:]
    _row("full-mid", "the disk fills up during the run", "run --store TMP/mnt/r.sqlite (160 KB tmpfs)",
         proc, 3, lost[0], tmp_path)
    assert "incomplete (store-lost" in proc.stdout
    (run,) = sqlite_rows(mnt / "r.sqlite", "SELECT status, reason FROM runs")
    if run["status"] != "running":                # marked where the full disk still allowed it
        assert (run["status"], run["reason"]) == ("incomplete", "store-lost")
    else:                                         # else the next look shows it dead
        reader = vc("results", "--store", mnt / "r.sqlite")
        assert "incomplete(killed)" in reader.stdout, reader


def _case_pg(tmp_path, tmpfs):
    url = "postgresql://nobody@/vc?host=/nonexistent-vc-socket-dir"
    proc = vc("run", "--profile", "sim-p2p", "--store", url)
    _row("pg", "`--store` names an unreachable PostgreSQL server", f"run --store {url}", proc, 2,
         _one_line(proc), tmp_path)
    proc = vc("results", "--store", url)
    assert proc.returncode == 2 and _one_line(proc)


def _case_no_run(tmp_path, tmpfs):
    path = tmp_path / "r.sqlite"
    _store_with_a_run(path)
    proc = vc("results", "--store", path, "--run", "999")
    _row("no-run", "`results --run N` for a run that is not stored", "results --store TMP/r.sqlite --run 999",
         proc, 2, _one_line(proc), tmp_path)


@pytest.mark.parametrize("args,expect", [(["results"], 0), (["diff", "prev", "latest", "--no-html"], 0)])
def test_output_into_a_closed_pipe(tmp_path, args, expect):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    for _ in range(2):
        sample.write_run(store, "sim-p2p", {}, repeat=200)
    store.close()
    cmd = [sys.executable, "-m", "vfio_conform", *args, "--store", str(path)]
    if args[0] == "results":
        cmd += ["--limit", "2", "--run", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()                          # like `| head -1`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == expect and "Traceback" not in err and "Broken" not in err, err


CASES = {"dir": _case_dir, "corrupt": _case_corrupt, "ro": _case_ro, "locked": _case_locked,
         "full": _case_full, "full-mid": _case_full_mid, "pg": _case_pg, "no-run": _case_no_run}
ORDER = ["dir", "corrupt", "corrupt-read", "ro", "locked", "full", "full-mid", "pg", "no-run"]


def test_bad_store_inputs_and_the_docs_table(tmp_path, tmpfs):
    """Every case above; then the documented table must be exactly what they produced."""
    pytest.importorskip("psycopg", reason="the PostgreSQL case needs psycopg")
    for case, check in CASES.items():
        where = tmp_path / case
        where.mkdir()
        check(where, tmpfs)
    lines = ["| bad input | command | exit | message |", "|---|---|---|---|"]
    for case in ORDER:
        what, cmd, code, msg = ROWS[case]
        msg = re.sub(r"\s+", " ", msg).replace("|", "\\|")
        lines.append(f"| {what} | `{cmd}` | {code} | `{msg}` |")
    table = "\n".join(lines)
    text = DOC.read_text()
    if os.environ.get("VC_UPDATE_DOCS"):
        head, _, rest = text.partition(BEGIN)
        text = f"{head}{BEGIN}\n{table}\n{END}{rest.partition(END)[2]}"
        DOC.write_text(text)
    documented = text.partition(BEGIN)[2].partition(END)[0].strip()
    assert documented == table, f"docs/run-lifecycle.md is stale; rerun with VC_UPDATE_DOCS=1:\n{table}"
