"""`report --format kcidb`: stored runs as KernelCI KCIDB I/O data, valid against KCIDB's own
schema (the kcidb-io package, `test` extra): kernel release and configuration, harness build,
dotted test paths, PASS/FAIL/ERROR/SKIP, an unfinished run as ERROR; and examples/kcidb/ holds
such a document."""
from __future__ import annotations

import json

import pytest

from run_cli import ROOT, vc
from suite_runner import write_profile
from vfio_conform.base.build import harness_build
from vfio_conform.report.kcidb import kcidb_path

kcidb_io = pytest.importorskip("kcidb_io", reason="pip install 'vfio-conform[test]' (kcidb-io)")
EXAMPLE = ROOT / "examples" / "kcidb" / "mtty-nightly.kcidb.json"


def _validate(doc: dict) -> None:
    kcidb_io.schema.LATEST.validate(doc)           # raises on anything KCIDB would refuse


def test_paths_are_dotted_kcidb_paths():
    assert kcidb_path("sim-p2p", "test_arc[sim-p2p:RUNNING->STOP]") == "vfio_conform.sim-p2p.test_arc.RUNNING-STOP"
    assert kcidb_path("sim-p2p", "test_stop_copy_eof[sim-p2p]") == "vfio_conform.sim-p2p.test_stop_copy_eof"
    assert kcidb_path("p", "test_region[p:bar0 r/w]") == "vfio_conform.p.test_region.bar0_r_w"


def test_a_real_run_exports_valid_kcidb(tmp_path):
    broken = write_profile(tmp_path, "sim-stop-copy", "broken", faults=[{"name": "wrong_errno"}])
    store = tmp_path / "r.sqlite"
    run = vc("run", "--profile", str(broken), "--store", str(store), "-q", "--", "-k",
             "test_arc or precopy", VFIO_CONFORM_HOST="lab17")     # no PRE_COPY: not-supported
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr
    out = tmp_path / "k.json"
    done = vc("report", "latest", "--store", str(store), "--format", "kcidb", "--out", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    _validate(doc)
    (build,) = doc["builds"]
    assert build["misc"]["kernel_release"] and build["misc"]["kernel_config"]
    statuses = {t["status"] for t in doc["tests"]}
    assert "PASS" in statuses and "SKIP" in statuses
    assert all(t["path"].startswith("vfio_conform.broken.") for t in doc["tests"])
    assert {t["misc"]["harness_build"] for t in doc["tests"]} == {str(harness_build())}
    assert {t["misc"]["host"] for t in doc["tests"]} == {"lab17"}
    fails = [t for t in doc["tests"] if t["status"] == "FAIL"]
    assert fails and all(t["misc"]["rule"] and t["misc"]["outcome"] == "fail" for t in fails)


def test_an_unfinished_run_is_an_error_not_a_pass(tmp_path):
    from vfio_conform.report import sample
    from vfio_conform.results import ResultStore
    store = ResultStore(tmp_path / "r.sqlite")
    run = sample.write_run(store, "p", {"test_arc[p:RUNNING->STOP]": ("pass", "")}, status="killed")
    store.close()
    out = tmp_path / "k.json"
    assert vc("report", str(run), "--store", str(tmp_path / "r.sqlite"), "--format", "kcidb",
              "--out", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    _validate(doc)
    (whole,) = [t for t in doc["tests"] if t["path"] == "vfio_conform.p"]
    assert whole["status"] == "ERROR" and "did not finish" in whole["comment"]


def test_the_example_is_valid_kcidb():
    doc = json.loads(EXAMPLE.read_text())
    _validate(doc)
    assert {t["status"] for t in doc["tests"]} == {"PASS", "FAIL", "ERROR", "SKIP"}
    known = [t for t in doc["tests"] if t["misc"]["outcome"] == "known-issue"]
    assert known and all(t["status"] == "FAIL" and t["misc"]["known_issue"] for t in known)
    assert "CONFIG_VFIO=" in doc["builds"][0]["misc"]["kernel_config"]
