"""A run killed at a random point (SIGTERM or SIGKILL) never reads as finished, keeps every row it
recorded, and fails `diff prev latest`. Several seeds, on SQLite and on PostgreSQL."""
import os
import random
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from run_cli import popen, sqlite_rows, vc
from vfio_conform.cli.app import main as cli_main
from vfio_conform.qemu_lab.crash import read_progress
from vfio_conform.results import open_store

PROFILE = "sim-p2p"
SEEDS = (11, 22, 33)


def _started(progress) -> list[str]:
    """The tests the run started, as the progress file lists them after its selection lines."""
    return read_progress(Path(progress)).started


def _kill_at_random_point(store: str, progress, sig: int, seed: int) -> tuple[int, list[str], str]:
    """Start a run, wait until a random number of tests started, send `sig`; (exit, started, output)."""
    rng = random.Random(seed)
    target = rng.randint(3, 80)           # of the profile's ~170 tests
    proc = popen("run", "--profile", PROFILE, "-q", "--store", store, "--progress-file", progress)
    deadline = time.monotonic() + 120
    while len(_started(progress)) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.02))
    assert proc.poll() is None, f"run ended before the kill point ({target}):\n{proc.stdout.read()[-2000:]}"
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, _started(progress), out


def _check_rows_kept(results: list[dict], started: list[str]) -> None:
    """Every test that started before the last one started has its verdict stored."""
    have = {r["nodeid"] for r in results}
    missing = [n for n in started[:-1] if n not in have]
    assert not missing, missing[:5]


def _check_reader_and_diff(url: str, run_id: int, capsys, reason: str) -> None:
    assert cli_main(["results", "--store", url, "--limit", "1"]) == 0
    line = capsys.readouterr().out
    assert f"#{run_id}" in line and f"incomplete({reason})" in line, line
    assert cli_main(["diff", "prev", "latest", "--store", url, "--no-html"]) == 1
    out = capsys.readouterr().out
    assert f"run #{run_id} is incomplete ({reason})" in out, out[-1500:]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A store holding one finished run of the profile (the 'prev' of every killed run)."""
    path = tmp_path_factory.mktemp("baseline") / "base.sqlite"
    proc = vc("run", "--profile", PROFILE, "-q", "--store", path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return path


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_sqlite(baseline, tmp_path, capsys, sig, seed):
    store = tmp_path / "r.sqlite"
    shutil.copy(baseline, store)
    code, started, out = _kill_at_random_point(str(store), tmp_path / "progress", sig, seed)
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    run = sqlite_rows(store, "SELECT * FROM runs ORDER BY id DESC LIMIT 1")[0]
    _check_rows_kept(sqlite_rows(store, f"SELECT * FROM results WHERE run_id = {run['id']}"), started)
    if sig == signal.SIGTERM:       # handled: the run itself says why it ended, exit 3
        assert code == 3, out[-2000:]
        assert (run["status"], run["reason"]) == ("incomplete", "terminated")
        reason = "terminated"
    else:                           # nothing ran at exit: readers see it dead, writers mark it
        assert code == -signal.SIGKILL and run["status"] == "running"
        reason = "killed"
    _check_reader_and_diff(str(store), run["id"], capsys, reason)
    if sig == signal.SIGKILL:
        stored = sqlite_rows(store, f"SELECT status FROM runs WHERE id = {run['id']}")[0]
        assert stored["status"] == "running", "a reader changed the store"
        open_store(store).close()   # the next writer marks it
        stored = sqlite_rows(store, f"SELECT status, reason, ended FROM runs WHERE id = {run['id']}")[0]
        assert (stored["status"], stored["reason"]) == ("incomplete", "killed") and stored["ended"]


@pytest.fixture(scope="module")
def pg_baseline(pg_server):
    """A PostgreSQL store holding one finished run of the profile; the kills follow in it."""
    url = pg_server("killed_runs")
    proc = vc("run", "--profile", PROFILE, "-q", "--store", url)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return url


@pytest.mark.xdist_group("postgres")
@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_postgres(pg_baseline, tmp_path, capsys, sig, seed):
    url = pg_baseline
    code, started, out = _kill_at_random_point(url, tmp_path / "progress", sig, seed)
    import psycopg
    with psycopg.connect(url) as db:
        cur = db.execute("SELECT id, status, reason FROM runs ORDER BY id DESC LIMIT 1")
        run_id, status, reason = cur.fetchone()
        have = [r[0] for r in db.execute("SELECT nodeid FROM results WHERE run_id = %s", (run_id,))]
    _check_rows_kept([{"nodeid": n} for n in have], started)
    if sig == signal.SIGTERM:
        assert code == 3 and (status, reason) == ("incomplete", "terminated"), out[-2000:]
        expect = "terminated"
    else:
        assert code == -signal.SIGKILL and status == "running"
        expect = "killed"
    _check_reader_and_diff(url, run_id, capsys, expect)


@pytest.mark.xdist_group("postgres")
def test_postgres_server_lost_mid_run(pg_server, tmp_path, capsys):
    """The server goes away during the run: the run stops with one line and exit 3; once the
    server is back the run reads incomplete and the next writer marks it."""
    url = pg_server("lost_mid_run")
    progress = tmp_path / "progress"
    proc = popen("run", "--profile", PROFILE, "-q", "--store", url, "--progress-file", progress)
    try:
        deadline = time.monotonic() + 120
        while len(_started(progress)) < 20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pg_server.stop()
        out, _ = proc.communicate(timeout=120)
    finally:
        pg_server.start()
    assert proc.returncode == 3 and "Traceback" not in out, out[-3000:]
    assert [ln for ln in out.splitlines() if ln.startswith("store lost: result store postgresql://")], out
    reader = open_store(url, readonly=True)
    (run,) = reader.runs()
    reader.close()
    assert run["status"] == "incomplete" and run["reason"] in ("killed", "store-lost"), run
    writer = open_store(url)                  # marks it if the lost server kept it `running`
    (run,) = writer.runs()
    writer.close()
    assert run["status"] == "incomplete", run
