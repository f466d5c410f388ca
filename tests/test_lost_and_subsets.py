"""docs/run-lifecycle.md "Lost tests and subsets" is true: each row's command, run for real, ends with
its status, reason, exit code and verdict (or message).

Faults are injected by the test-only plugins of tests/vc_plugins: an xdist worker killed by a signal
in a test of each test-id shape, a test re-run after its worker died, a wedged worker, a dead device.
Every `run` row gets its own store and reports directory; the `diff`/`results`/`report` rows read one
store built once for the module (the runs the doc describes).
"""
from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from run_cli import ROOT, sqlite_rows, vc

DOC = ROOT / "docs" / "run-lifecycle.md"
ARCS = ("-k", "test_arc and RUNNING")


def doc_rows() -> list[dict]:
    text = DOC.read_text()
    table = text.split("<!-- lost-and-subsets:begin -->")[1].split("<!-- lost-and-subsets:end -->")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 6, line
        case, command, status, reason, code, verdict = (c.replace("—", "") for c in cells)
        rows.append({"case": case.strip("`"), "command": command.strip("`"), "status": status,
                     "reason": reason, "exit": int(code), "verdict": verdict.strip("`")})
    return rows


ROWS = doc_rows()
#: The killed test of each crash row (its record must name it and the signal).
KILLED = {"kill-arc": ("test_arc[sim-p2p:RUNNING->RESUMING]", "SIGKILL"),
          "segv-dashed-id": ("test_data_size_in_every_state[sim-p2p-STOP]", "SIGSEGV"),
          "kill-plain-id": ("test_mig_data_size_matches_stream[sim-p2p]", "SIGKILL"),
          "kill-region-id": ("test_region_access_width[sim-p2p:BAR2-w4]", "SIGKILL"),
          "kill-once-rerun-passes": ("test_arc[sim-p2p:RUNNING->RESUMING]", "SIGKILL")}


@functools.lru_cache(maxsize=None)
def collected(*pytest_args: str) -> int:
    """How many tests of sim-p2p a collection with these pytest arguments selects."""
    proc = vc("run", "-q", "--profile", "sim-p2p", "--no-store", "--", *pytest_args, "--collect-only")
    assert proc.returncode == 0, proc.stdout[-2000:]
    return sum("::" in line for line in proc.stdout.splitlines())


def expected_verdict(row: dict) -> str:
    """The row's verdict with TOTAL (sim-p2p's whole suite) and SEL (what the row's own selection
    collects) counted: other work adds tests to the suites."""
    text = row["verdict"]
    if "SEL" in text:
        after = shlex.split(row["command"]).copy()
        text = text.replace("SEL", str(collected(*after[after.index("--") + 1:])))
    return text.replace("TOTAL", str(collected()))


def _split(command: str, tmp: Path) -> tuple[dict, list[str]]:
    words = shlex.split(command.replace("TMP", str(tmp)))
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def _summary(reports: Path) -> dict:
    (path,) = reports.glob("runs/*/summary.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def diff_store(tmp_path_factory) -> Path:
    """Runs 1-4 of the doc's diff/results/report rows."""
    path = tmp_path_factory.mktemp("diffs") / "r.sqlite"
    runs = [((), ("--profile", "sim-p2p", "--", *ARCS)),
            ((("VC_DEAD_PROFILE", "sim-p2p"),), ("--profile", "sim-p2p", "-p", "vc_dead_device", "--", *ARCS)),
            ((), ("--profile", "sim-stop-copy", "--", *ARCS)),
            ((), ("--profile", "sim-p2p", "--", "-k", "test_arc and RUNNING and STOP"))]
    for env, args in runs:
        proc = vc("run", "-q", "--store", path, *args, **dict(env))
        assert proc.returncode in (0, 3), proc.stdout[-3000:]
    outcomes = {r["outcome"] for r in sqlite_rows(path, "SELECT outcome FROM results WHERE run_id = 2")}
    assert outcomes == {"infra-error"}, outcomes
    return path


def _verb(row: dict) -> str:
    return _split(row["command"], Path("/tmp"))[1][0]


def test_every_row_names_a_command():
    assert len(ROWS) >= 20 and {_verb(r) for r in ROWS} == {"run", "diff", "results", "report"}


@pytest.mark.parametrize("row", [r for r in ROWS if _verb(r) == "run"], ids=lambda r: r["case"])
def test_run_rows(tmp_path, row):
    env, argv = _split(row["command"], tmp_path)
    store, reports = tmp_path / "r.sqlite", tmp_path / "reports"
    ktap = tmp_path / "k.tap"
    proc = vc(argv[0], "-q", "--store", store, "--reports", reports, "--ktap", ktap, *argv[1:],
              timeout=600, **env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == row["exit"], out[-4000:]
    assert "INTERNALERROR" not in out and "Traceback" not in proc.stderr, out[-4000:]
    (run,) = sqlite_rows(store, "SELECT * FROM runs")
    assert (run["status"], run["reason"] or "") == (row["status"], row["reason"]), run
    doc = _summary(reports)
    (prof,) = doc["profiles"]
    verdict = expected_verdict(row)
    assert prof["verdict_text"] == verdict, prof
    subset = "subset" in row["verdict"]
    assert prof["complete"] is (not subset) and doc["complete"] is (not subset)
    selected, total = (int(n) for n in re.search(r"(\d+)/(\d+)", verdict).groups()) if subset \
        else (None, None)
    if subset:
        assert prof["selection"] == {"selected": selected, "total": total}
        assert (run["selected_tests"], run["suite_tests"]) == (selected, total)
        assert prof["verdict"] != "CONFORMANT" and doc["verdict"] != "CONFORMANT"
        junit = next(reports.glob("runs/*/junit.xml")).read_text()
        assert f'name="selection" value="subset {selected}/{total}"' in junit
        assert f"# selection: subset {selected}/{total} tests" in ktap.read_text()
    else:
        assert run["selected_tests"] == run["suite_tests"] and run["selected_tests"] > 200
    html = next(reports.glob("runs/*/report.html")).read_text()
    assert f"<b>{verdict}</b>" in html
    assert ("data-subset=" in html) is (subset and row["status"] == "finished")
    results = sqlite_rows(store, f"SELECT * FROM results WHERE run_id = {run['id']}")
    if row["case"] in KILLED:
        test_id, sig = KILLED[row["case"]]
        crashes = [r for r in results if r["test_id"] == test_id and r["outcome"] == "infra-error"]
        assert crashes and all(f"killed by {sig}" in r["message"] and test_id in r["message"]
                               for r in crashes), [r for r in results if r["test_id"] == test_id]
        if row["status"] == "incomplete":          # the test kills every replacement too
            assert "have no verdict" in proc.stdout
        else:                                      # queued again once, and the re-run passed
            assert len(crashes) == 1 and "queued again" in crashes[0]["message"]
            assert [r["outcome"] for r in results if r["test_id"] == test_id] == ["infra-error", "pass"]
    if row["status"] == "incomplete":
        assert len({r["nodeid"] for r in results}) < (selected or 0)


@pytest.mark.parametrize("row", [r for r in ROWS if _verb(r) != "run"], ids=lambda r: r["case"])
def test_reader_rows(diff_store, tmp_path, row):
    store = tmp_path / "r.sqlite"
    shutil.copy(diff_store, store)
    _, argv = _split(row["command"], tmp_path)
    proc = vc(argv[0], *argv[1:], "--store", store)
    assert proc.returncode == row["exit"], proc.stdout[-3000:] + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    expected = row["verdict"].replace("TMP", str(tmp_path))
    if row["exit"] == 2:
        assert proc.stderr.splitlines() == [expected], proc.stderr
    else:
        assert expected in proc.stdout.splitlines()[-1], proc.stdout[-2000:]
    assert {p.name for p in tmp_path.iterdir()} <= {"r.sqlite", "r.sqlite-shm", "r.sqlite-wal"}   # no report


@pytest.mark.parametrize("nodeid, expected", [
    ("suites/fsm/test_arcs.py::test_arc[sim-p2p:RUNNING->STOP]", "sim-p2p"),
    ("suites/fsm/test_arcs.py::test_arc[sim-p2p:RUNNING->STOP]@sim-p2p", "sim-p2p"),
    ("suites/depth/test_datasize.py::test_data_size_in_every_state[sim-p2p-STOP]", "sim-p2p"),
    ("suites/depth/test_datasize.py::test_data_size_in_every_state[sim-p2p-precopy-STOP]", "sim-p2p-precopy"),
    ("suites/data/test_stream.py::test_round_trip_restores_state[sim-p2p]@inv#0", "sim-p2p"),
    ("suites/data/test_stream.py::test_round_trip_restores_state[sim-p2p-precopy]", "sim-p2p-precopy"),
    ("suites/regions/test_access.py::test_region_access_width[sim-p2p:BAR2-w4]", "sim-p2p"),
    ("suites/consumers/test_qemu.py::test_consumer_qemu_destination[sim-p2p-in-resuming]", "sim-p2p"),
    ("x.py::test_y[in-resuming-sim-p2p]", "sim-p2p"),
    ("x.py::test_plain", None), ("x.py::test_y[sim-p2px]", "sim"),
    ("x.py::test_y[simx-p2p]", None), ("x.py::test_y[xsim-p2p]", None),
])
def test_profile_of_every_id_shape(nodeid, expected):
    from vfio_conform.plugin.selection import profile_of
    assert profile_of(nodeid, ["sim-p2p", "sim-p2p-precopy", "sim"]) == expected


def _selection_round_trip(url: str) -> None:
    from vfio_conform.results import RunMeta, open_store
    for _ in range(2):                       # the migration is additive and idempotent
        store = open_store(url)
        run = store.begin_run(RunMeta("p", "sim", "sim0", "sim", "6.12", "0", "h", "s"))
        assert (store.run(run)["selected_tests"], store.run(run)["suite_tests"]) == (None, None)
        store.set_selection(run, 24, 231)
        assert (store.run(run)["selected_tests"], store.run(run)["suite_tests"]) == (24, 231)
        assert store.run(2 ** 63) is None and store.run(-1) is None
        store.close()


def test_selection_columns_on_an_old_sqlite_store(tmp_path):
    import sqlite3
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)       # the first schema: no added columns at all
    db.executescript("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, "
                     "profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT, kernel TEXT, "
                     "harness_version TEXT, host TEXT, argv TEXT, started REAL NOT NULL, ended REAL, "
                     "status TEXT NOT NULL DEFAULT 'running');")
    db.close()
    _selection_round_trip(str(path))


@pytest.mark.xdist_group("postgres")
def test_selection_columns_on_postgres(pg_server):
    pytest.importorskip("psycopg", reason="pip install 'vfio-conform[postgres]'")
    _selection_round_trip(pg_server("selection"))


class _Node:
    """A stand-in xdist worker: records what the scheduler sends it."""

    def __init__(self, name: str) -> None:
        self.name, self.sent, self.shutting_down = name, [], False
        self.gateway = type("Gateway", (), {"id": name})()

    def send_runtest_some(self, indices) -> None:
        self.sent.append(list(indices))

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduler(safe: bool):
    from types import SimpleNamespace

    from xdist.scheduler import LoadGroupScheduling

    from vfio_conform.plugin.workers import WorkerWatch
    values = {"tx": ["2*popen"], "dist": "loadgroup"}
    config = SimpleNamespace(getvalue=values.get, option=SimpleNamespace(loadscopereorder=False))
    if not safe:
        return LoadGroupScheduling(config)
    return WorkerWatch.pytest_xdist_make_scheduler(None, config, None)


IDS = [f"t.py::test_{g}{i}@{g}" for g in "abc" for i in range(4 if g != "c" else 2)]


def _crash_while_a_replacement_collects(sched):
    """Worker A finishes group a, takes group c, dies in c's first test while replacement C has
    not reported its collection; then C's collection arrives."""
    a, b, c = _Node("A"), _Node("B"), _Node("C")
    for node in (a, b):
        sched.add_node(node)
        sched.add_node_collection(node, IDS)
    sched.schedule()
    for i in range(4):                      # group a done; A is given group c on the way
        sched.mark_test_complete(a, IDS.index(f"t.py::test_a{i}@a"))
    sched.add_node(c)
    crashed = sched.remove_node(a)
    return crashed, b, c


def test_xdist_load_group_scheduler_loses_the_rest_when_a_worker_dies():
    """Why the harness brings its own: xdist's raises KeyError inside remove_node (which xdist's
    controller swallows: the crashed test goes unreported, B and C are never given group c)."""
    with pytest.raises(KeyError):
        _crash_while_a_replacement_collects(_scheduler(safe=False))


def test_safe_scheduler_reports_the_crash_and_hands_out_the_rest():
    sched = _scheduler(safe=True)
    crashed, b, c = _crash_while_a_replacement_collects(sched)
    assert crashed == "t.py::test_c0@c"
    assert "a" not in sched.workqueue            # the finished group is not handed out again
    assert not c.sent                            # nothing before its collection arrived
    sched.add_node_collection(c, IDS)
    sched.schedule()
    assert c.sent == [[IDS.index("t.py::test_c0@c"), IDS.index("t.py::test_c1@c")]]
    for nid in ("t.py::test_c0@c", "t.py::test_c1@c"):
        sched.mark_test_complete(c, IDS.index(nid))
    for i in range(4):
        sched.mark_test_complete(b, IDS.index(f"t.py::test_b{i}@b"))
    assert sched.tests_finished and b.shutting_down and c.shutting_down


def test_a_profiles_tests_run_on_one_worker(tmp_path):
    """The load group reaches xdist's scheduler whatever form pytest keeps node ids in: from pytest
    9.2 xdist's own `@group` suffix was lost, a profile's tests ran on both workers at once and a
    killed test was re-queued alone (the run then stalled instead of ending `partial`)."""
    proc = vc("run", "--profile", "sim-p2p", "--no-store", "--reports", tmp_path, "-n", "2", "--", "-vv",
              "-k", "test_arc and STOP", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ran = re.findall(r"\[(gw\d+)\].*?(\S*test_arc\[sim-p2p:\S*)", proc.stdout)
    assert len(ran) > 10 and all(nodeid.endswith("]@sim-p2p") for _, nodeid in ran), ran[:5]
    assert len({worker for worker, _ in ran}) == 1, ran
