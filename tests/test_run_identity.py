"""Every run's identity: the host it is stored under and the harness build that made it.

The harness build (vfio_conform/base/build.py): package version, git commit and dirty flag of a
checkout, hash of the suites and rule catalogue; stored with each run (a column added to old
stores), shown in the summary, JSON, HTML, JUnit and Allure, and `diff` says when it changed.
The host: JUnit hostname, an Allure parameter (and part of historyId), `report --host`,
`results --host` with a host column, `diff prev --host`, and a host's first run of a profile
passes the gate as a baseline.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from run_cli import sqlite_rows, vc
from vfio_conform.base.build import HarnessBuild, content_hash, git_state, harness_build
from vfio_conform.report import sample
from vfio_conform.cli.report import main as report_main
from vfio_conform.results import ResultStore

A = "test_arc[p:RUNNING->STOP]"
B = "test_arc[p:STOP->RUNNING]"


def test_build_text_round_trips():
    for build in (HarnessBuild("0.1.0", "1a2b3c4d5e6f", True, "0123456789ab"),
                  HarnessBuild("0.1.0", "", False, "0123456789ab"), HarnessBuild("0.2.0")):
        assert HarnessBuild.parse(str(build)) == build
    assert str(HarnessBuild("0.1.0", "1a2b3c4d5e6f", True, "0123456789ab")) == \
        "0.1.0+g1a2b3c4d5e6f.dirty suites:0123456789ab"
    assert HarnessBuild.parse("0.1.0") == HarnessBuild("0.1.0")      # an old store's bare version


def test_git_commit_and_dirty_flag(tmp_path):
    assert git_state(tmp_path) == ("", False)                         # not a checkout
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True,  # noqa: E731
                                    capture_output=True, text=True, timeout=30)
    git("init", "-q")
    (tmp_path / "f").write_text("a")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    head = git("rev-parse", "HEAD").stdout.strip()
    assert git_state(tmp_path) == (head[:12], False)
    (tmp_path / "f").write_text("b")
    assert git_state(tmp_path) == (head[:12], True)


def test_content_hash_follows_suites_and_rule_catalogue(tmp_path):
    (tmp_path / "suites" / "fsm").mkdir(parents=True)
    (tmp_path / "model").mkdir()
    (tmp_path / "suites" / "fsm" / "test_x.py").write_text("def test_x(): pass\n")
    (tmp_path / "model" / "spec.py").write_text("RULES = ()\n")
    parts = {"suites": tmp_path / "suites", "model/spec.py": tmp_path / "model" / "spec.py"}
    first = content_hash(parts)
    (tmp_path / "suites" / "fsm" / "__pycache__").mkdir()
    (tmp_path / "suites" / "fsm" / "__pycache__" / "test_x.pyc").write_bytes(b"\0")
    (tmp_path / "other.py").write_text("x = 1\n")
    assert content_hash(parts) == first                               # neither bytecode nor other code
    (tmp_path / "model" / "spec.py").write_text("RULES = ('x',)\n")
    second = content_hash(parts)
    (tmp_path / "suites" / "fsm" / "test_x.py").write_text("def test_x(): assert 0\n")
    assert len({first, second, content_hash(parts)}) == 3


def test_this_checkout_has_a_commit():
    build = harness_build()
    assert build.version and len(build.content) == 12
    assert len(build.commit) == 12 and int(build.commit, 16) >= 0     # tests run from a checkout


def test_a_run_stores_and_shows_its_build_and_host(tmp_path):
    store, reports = tmp_path / "r.sqlite", tmp_path / "reports"
    out = vc("run", "--profile", "sim-stop-copy", "--store", str(store), "--reports", str(reports),
             "--json", str(tmp_path / "s.json"), "--", "-k", "test_arc and RUNNING", VFIO_CONFORM_HOST="lab42")
    assert out.returncode == 0, out.stdout + out.stderr
    (run,) = sqlite_rows(store, "SELECT * FROM runs")
    build = str(harness_build())
    assert run["harness_build"] == build and run["host"] == "lab42"
    assert json.loads(run["environment"])["harness_build"] == build
    assert f"harness: {build}" in out.stdout and "host: lab42" in out.stdout
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["harness_build"]["id"] == build and doc["harness_build"]["commit"] == harness_build().commit
    assert doc["profiles"][0]["host"] == "lab42" and doc["profiles"][0]["harness_build"] == build
    (junit,) = reports.rglob("junit.xml")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("hostname") == "lab42"                           # the store's host, not gethostname()
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["harness.build"] == build
    (allure,) = reports.rglob("allure-results")
    assert f"harness.build={build}" in (allure / "environment.properties").read_text()
    result = json.loads(next(allure.glob("*-result.json")).read_text())
    assert {"name": "host", "value": "lab42"} in result["parameters"]
    html = tmp_path / "r.html"
    assert vc("report", "--store", str(store), "--out", str(html)).returncode == 0
    assert build in html.read_text()


def test_allure_history_differs_per_host(tmp_path):
    """Two hosts' runs of one profile in one Allure report are two tests each, not retries."""
    ids = {}
    for host in ("lab1", "lab2"):
        reports = tmp_path / host
        out = vc("run", "--profile", "sim-stop-copy", "--no-store", "--reports", str(reports), "--",
                 "-k", "test_arc and RUNNING and STOP and not P2P", VFIO_CONFORM_HOST=host)
        assert out.returncode == 0, out.stdout + out.stderr
        ids[host] = {json.loads(p.read_text())["historyId"] for p in reports.rglob("*-result.json")}
    assert ids["lab1"] and len(ids["lab1"]) == len(ids["lab2"]) and not ids["lab1"] & ids["lab2"]


def test_old_store_gets_the_build_column(tmp_path):
    path = tmp_path / "old.sqlite"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE runs DROP COLUMN harness_build")
    db.commit()
    db.close()
    for _ in range(2):                                                # idempotent
        store = ResultStore(path)
        run = sample.write_run(store, "p", {}, harness_build="0.1.0+gabc suites:1")
        assert store.run(run)["harness_build"] == "0.1.0+gabc suites:1"
        store.close()


def _store(tmp_path) -> Path:
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    old = HarnessBuild("0.1.0", "1a2b3c4d5e6f", False, "aaaaaaaaaaaa")
    sample.write_run(store, "p", {A: ("pass", "")}, host="lab1", session="S1", harness_build=str(old))
    sample.write_run(store, "p", {A: ("fail", "")}, host="lab2", session="S2", harness_build=str(old))
    sample.write_run(store, "p", {A: ("pass", ""), B: ("pass", "")}, host="lab1", session="S3",
                     harness_build=str(HarnessBuild("0.1.0", "0f0f0f0f0f0f", True, "bbbbbbbbbbbb")))
    store.close()
    return path


def test_diff_says_the_harness_changed(tmp_path, capsys):
    path = _store(tmp_path)
    html = tmp_path / "d.html"
    assert report_main(["diff", "prev", "latest", "--host", "lab1", "--store", str(path),
                        "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert ("harness changed: 0.1.0+g1a2b3c4d5e6f suites:aaaaaaaaaaaa -> 0.1.0+g0f0f0f0f0f0f.dirty "
            "suites:bbbbbbbbbbbb (the suites or the rule catalogue differ") in out
    assert "harness.build" not in out                                 # once, not again as environment
    assert 'class="harness-change"' in html.read_text()


def test_report_and_results_per_host(tmp_path, capsys):
    path = _store(tmp_path)
    html = tmp_path / "lab2.html"
    # 'latest' of the shared store is lab1's session; --host lab2 publishes lab2's own run
    out = vc("report", "latest", "--host", "lab2", "--store", str(path), "--out", str(html))
    assert out.returncode == 0, out.stderr
    assert "run #2" in html.read_text() and "lab2" in html.read_text() and "run #3" not in html.read_text()
    assert vc("report", "latest", "--host", "nohost", "--store", str(path)).returncode == 2
    listing = vc("results", "--store", str(path))
    lines = [ln.split() for ln in listing.stdout.splitlines() if ln.startswith("#")]
    assert [(ln[0], ln[3]) for ln in lines] == [("#3", "lab1"), ("#2", "lab2"), ("#1", "lab1")]
    only = vc("results", "--store", str(path), "--host", "lab1", "--json")
    assert [p["run_id"] for p in json.loads(only.stdout)["profiles"]] == [1, 3]
    assert {p["host"] for p in json.loads(only.stdout)["profiles"]} == {"lab1"}


@pytest.mark.parametrize("status,code", [("finished", 0), ("killed", 1)])
def test_first_run_of_a_host_is_a_baseline(tmp_path, capsys, status, code):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    sample.write_run(store, "p", {A: ("pass", "")}, host="lab1", session="S1")
    sample.write_run(store, "p", {A: ("fail", "")}, host="lab9", session="S2", status=status)
    store.close()
    assert report_main(["diff", "prev", "latest", "--host", "lab9", "--store", str(path), "--no-html"]) == code
    out = capsys.readouterr().out
    assert "baseline: the first run of p on host lab9" in out
    assert ("no regression" in out) == (code == 0)
    # with an earlier run of the same host, the same failure is a regression again
    store = ResultStore(path)
    sample.write_run(store, "p", {A: ("fail", ""), B: ("fail", "")}, host="lab9", session="S3")
    store.close()
    assert report_main(["diff", "prev", "latest", "--host", "lab9", "--store", str(path), "--no-html"]) == 1
    assert "baseline" not in capsys.readouterr().out


def test_children_inherit_the_build(tmp_path):
    """Workers and other child processes take the parent's build instead of asking git again."""
    store = tmp_path / "r.sqlite"
    given = "0.1.0+g0123456789ab suites:feedfacecafe"
    out = vc("run", "--profile", "sim-stop-copy", "--store", str(store), "-n", "1", "--", "-k",
             "test_arc and RUNNING", VFIO_CONFORM_HARNESS_BUILD=given)
    assert out.returncode == 0, out.stdout + out.stderr
    (run,) = sqlite_rows(store, "SELECT harness_build, environment FROM runs")
    assert run["harness_build"] == given and json.loads(run["environment"])["harness_build"] == given
