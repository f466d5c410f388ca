"""The result store on a real PostgreSQL server (a throwaway cluster on a unix socket in a tmp dir)."""
import subprocess
import sys
import textwrap
import time

import pytest


from vfio_conform.report import sample
from vfio_conform.cli.report import main as report_main
from vfio_conform.results import Outcome, RunMeta, TestRecord, import_runs, open_store

psycopg = pytest.importorskip("psycopg", reason="pip install 'vfio-conform[postgres]'")
pytestmark = pytest.mark.xdist_group("postgres")


def _meta(**kw):
    base = dict(profile="p", backend="sim", devices="sim0", driver="sim", kernel="6.12",
                harness_version="0", host="h", session="s")
    base.update(kw)
    return RunMeta(**base)


def test_same_api_as_sqlite(pg_server):
    store = open_store(pg_server("api"))
    run = store.begin_run(_meta(profile_hash="abc"))
    store.record(run, TestRecord("n::t[a]", "t[a]", Outcome.KNOWN_ISSUE, 0.1, "m\x00x", "rule", "http://x"))
    store.record(run, TestRecord("n::t[b]", "t[b]", Outcome.PASS, 0.2))
    store.end_run(run, "finished")
    (row,) = store.runs(profile="p")
    assert row["status"] == "finished" and row["profile_hash"] == "abc" and row["ended"] >= row["started"]
    assert store.summary(run) == {"known-issue": 1, "pass": 1}
    assert [r["test_id"] for r in store.results(run)] == ["t[a]", "t[b]"]
    assert store.results(run)[0]["link"] == "http://x"
    assert store.run(run)["id"] == run and store.run(run + 100) is None
    store.close()


def test_rows_are_committed_as_they_come(pg_server):
    url = pg_server("commit")
    store = open_store(url)
    run = store.begin_run(_meta())
    store.record(run, TestRecord("n", "t", Outcome.FAIL, 1.0, "boom"))
    with psycopg.connect(url) as other:
        assert other.execute("SELECT outcome, message FROM results").fetchall() == [("fail", "boom")]
    store.close()


def test_import_between_sqlite_and_postgres(pg_server, tmp_path):
    lite = open_store(tmp_path / "a.sqlite")
    sample.write_run(lite, "mtty", {"test_arc[mtty:STOP->RUNNING]": ("fail", "")})
    lite.close()
    pg = open_store(pg_server("imp"))
    (new,) = import_runs(pg, tmp_path / "a.sqlite")
    assert pg.summary(new) == {"pass": 66, "fail": 1}
    back = open_store(f"sqlite:///{tmp_path / 'b.sqlite'}")
    assert import_runs(back, pg.url) == [1] and back.summary(1) == {"pass": 66, "fail": 1}


def test_two_runs_write_concurrently(pg_server):
    url = pg_server("conc")
    go = time.time() + 1.2
    script = textwrap.dedent("""
        import sys, time
        from vfio_conform.results import Outcome, RunMeta, TestRecord, open_store
        url, name, go = sys.argv[1], sys.argv[2], float(sys.argv[3])
        time.sleep(max(0.0, go - time.time()))
        s = open_store(url)            # both create the schema at the same moment
        run = s.begin_run(RunMeta(name, 'sim', 'd', 'drv', 'k', '0', 'h', name))
        while len(s.runs()) < 2:       # barrier: both runs open before either writes a result
            time.sleep(0.01)
        for i in range(300):
            s.record(run, TestRecord(f'n{i}', f't[{name}:{i}]', Outcome.PASS if i % 7 else Outcome.FAIL, 0.0))
        s.end_run(run, 'finished')
        print(run)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, url, name, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("alpha", "beta")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    ids = sorted(int(o[0]) for o in outs)
    store = open_store(url)
    assert sorted(r["id"] for r in store.runs()) == ids
    for run_id in ids:
        assert store.summary(run_id) == {"pass": 257, "fail": 43}
        assert len({r["test_id"].split(":")[0] for r in store.results(run_id)}) == 1   # no mixing
    assert len({r["id"] for run_id in ids for r in store.results(run_id)}) == 600


def test_report_diff_and_env_var_on_postgres(pg_server, tmp_path, monkeypatch, capsys):
    url = pg_server("cli")
    store = open_store(url)
    old = sample.write_run(store, "sim-p2p", {}, kernel="6.1")
    new = sample.write_run(store, "sim-p2p", {"test_arc[sim-p2p:STOP->RUNNING]": ("fail", "")}, kernel="6.12")
    store.close()
    monkeypatch.setenv("VFIO_CONFORM_STORE", url)
    out = tmp_path / "r.html"
    assert report_main(["report", str(new), "--out", str(out)]) == 0
    assert 'data-outcome="fail"' in out.read_text()
    assert report_main(["diff", str(old), str(new), "--no-html"]) == 1
    assert report_main(["diff", str(old), str(old), "--no-html"]) == 0
    assert report_main(["trend", "--profile", "sim-p2p"]) == 0
    assert "6.12" in capsys.readouterr().out


def test_old_schema_is_migrated_by_a_writer_only(pg_server):
    from vfio_conform.results import StoreError
    url = pg_server("old_schema")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("""CREATE TABLE runs (id BIGSERIAL PRIMARY KEY, session TEXT NOT NULL,
            profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT, kernel TEXT,
            harness_version TEXT, host TEXT, argv TEXT, started DOUBLE PRECISION NOT NULL,
            ended DOUBLE PRECISION, status TEXT NOT NULL DEFAULT 'running')""")
        db.execute("""CREATE TABLE results (id BIGSERIAL PRIMARY KEY, run_id BIGINT NOT NULL
            REFERENCES runs(id), nodeid TEXT NOT NULL, test_id TEXT NOT NULL, outcome TEXT NOT NULL,
            duration DOUBLE PRECISION, message TEXT, rule TEXT, link TEXT,
            recorded DOUBLE PRECISION NOT NULL)""")
        db.execute("INSERT INTO runs (session, profile, started, status) VALUES ('s', 'p', 1, 'crashed')")

    def columns():
        with psycopg.connect(url) as db:
            return {r[0] for r in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'")}
    reader = open_store(url, readonly=True)
    (run,) = reader.runs()
    assert (run["status"], run["reason"]) == ("incomplete", "crashed")
    with pytest.raises(StoreError):
        reader.begin_run(_meta())                     # a reader's session is read-only
    reader.close()
    assert "reason" not in columns()
    open_store(url).close()
    assert {"reason", "pid", "boot_id", "harness_build"} <= columns()
    open_store(url).close()                           # idempotent: a second writer adds nothing
    assert {"reason", "pid", "boot_id", "harness_build"} <= columns()
