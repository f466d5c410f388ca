"""Allure results written by the harness from its records: one result file per test at the end of the
session (no fixture containers), the status and message per outcome, labels, waiver links, the files of
the run, and a `vfio-conform run` that works with allure-pytest absent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

from suite_runner import ROOT
from vfio_conform.cli import _parser, pytest_args
from vfio_conform.plugin import allure_results
from vfio_conform.profile.schema import KnownIssue
from vfio_conform.results import Outcome, TestRecord

LINK = "https://example.org/bug/9"


def _rec(test: str, outcome: str, message: str = "", **kw) -> TestRecord:
    return TestRecord(f"suites/fsm/test_x.py::{test}", test, Outcome(outcome), 0.25, message, profile="p",
                      test_key=test.replace("[p]", "").replace("[p:", "["), **kw)


RECORDS = [
    _rec("test_pass[p]", "pass", finished=1000.0, rules=("fsm.legal-arc",)),
    _rec("test_fail[p]", "fail", "SpecViolation: [fsm.state-after-set] broken", rule="fsm.state-after-set",
         rules=("fsm.legal-arc", "fsm.state-after-set")),
    _rec("test_infra[p]", "infra-error", "the host lost the device"),
    _rec("test_waived[p]", "known-issue", "SpecViolation: [fsm.legal-arc] waived\nknown issue, ...",
         rule="fsm.legal-arc", link=LINK, waiver_index=0, waiver_reason="vendor bug"),
    _rec("test_ns[p]", "not-supported", "Skipped: not-supported: no PRE_COPY"),
    _rec("test_gated[p]", "gated", "Skipped: gated: would hang", hazard="blocked-arc-hang"),
    _rec("test_skip[p]", "skipped", "Skipped: not-supported: a plain skip"),
    _rec("test_arc[p:STOP->RUNNING]", "pass", arc_from="STOP", arc_to="RUNNING"),
]


def _write(tmp_path, records=RECORDS, profile="p", **run_kw) -> dict[str, dict]:
    prof = allure_results.ProfileRun(profile, list(records), backend="sim", devices=("sim0", "sim1"),
                                     driver="sim", flags=3, run_id=7,
                                     waivers=(KnownIssue("test_waived*", "fsm.legal-arc", LINK, "vendor bug"),))
    run = allure_results.AllureRun("sess", "6.1.0", "hostA", [prof], **run_kw)
    assert allure_results.write(tmp_path, run) == len(records)
    return {d["name"]: d for d in (json.loads(p.read_text()) for p in tmp_path.glob("*-result.json"))}


def _labels(data: dict) -> dict[str, list[str]]:
    out = defaultdict(list)
    for label in data["labels"]:
        out[label["name"]].append(label["value"])
    return out


def test_one_result_file_per_record_and_no_containers(tmp_path):
    got = _write(tmp_path)
    assert sorted(got) == sorted(r.test_id for r in RECORDS)
    assert not list(tmp_path.glob("*-container.json"))
    assert {p.name for p in tmp_path.iterdir() if not p.name.endswith("-result.json")} == \
        {"environment.properties", "categories.json", "executor.json"}
    for data in got.values():
        assert data["uuid"] and (tmp_path / f"{data['uuid']}-result.json").exists()


def test_status_and_message_per_outcome(tmp_path):
    got = _write(tmp_path)
    status = {n: d["status"] for n, d in got.items()}
    assert status == {"test_pass[p]": "passed", "test_fail[p]": "failed", "test_infra[p]": "broken",
                      "test_waived[p]": "skipped", "test_ns[p]": "skipped", "test_gated[p]": "skipped",
                      "test_skip[p]": "skipped", "test_arc[p:STOP->RUNNING]": "passed"}
    msg = {n: d.get("statusDetails", {}).get("message") for n, d in got.items()}
    assert msg["test_ns[p]"] == "not-supported: no PRE_COPY"
    assert msg["test_gated[p]"] == "gated: would hang"
    assert msg["test_skip[p]"] == "skipped: not-supported: a plain skip"      # stays a plain skip
    assert msg["test_waived[p]"] == f"known-issue: known issue, waived by known_issues[0] ({LINK}): vendor bug"
    assert "[fsm.legal-arc] waived" in got["test_waived[p]"]["statusDetails"]["trace"]
    assert msg["test_fail[p]"].startswith("SpecViolation: [fsm.state-after-set]")
    assert "statusDetails" not in got["test_pass[p]"]
    assert (got["test_pass[p]"]["start"], got["test_pass[p]"]["stop"]) == (999750, 1000000)


def test_skips_fall_in_distinct_categories():
    import re
    cats = {c["name"]: c for c in allure_results.CATEGORIES}

    def category(status: str, message: str) -> list[str]:       # Allure: full match of the message
        return [n for n, c in cats.items() if status in c["matchedStatuses"]
                and re.fullmatch(c.get("messageRegex", "(?s).*"), message)]
    assert category("skipped", "known-issue: known issue, waived by ...") == ["Known issues (waived in profile)"]
    assert category("skipped", "not-supported: no PRE_COPY") == ["Not supported by the device"]
    assert category("skipped", "gated: would hang\nmore") == ["Gated hazards (not run on this kernel)"]
    assert category("skipped", "skipped: not-supported: a plain skip") == []


def test_labels_links_parameters_and_ids(tmp_path):
    got = _write(tmp_path, traces={"suites/fsm/test_x.py::test_fail[p]": "Traceback ... long"},
                 outputs={"suites/fsm/test_x.py::test_pass[p]": "seed 42\n"})
    fail = _labels(got["test_fail[p]"])
    assert fail["parentSuite"] == fail["profile"] == ["p"] and fail["suite"] == ["fsm"]
    assert fail["subSuite"] == ["test_x"] and fail["driver"] == ["sim"] and fail["outcome"] == ["fail"]
    assert fail["rule"] == ["fsm.state-after-set"]
    assert fail["checks"] == ["fsm.legal-arc", "fsm.state-after-set"]
    assert got["test_fail[p]"]["statusDetails"]["trace"] == "Traceback ... long"
    assert "rule" not in _labels(got["test_pass[p]"])
    arc = _labels(got["test_arc[p:STOP->RUNNING]"])
    assert arc["tag"] == arc["arc"] == ["STOP->RUNNING"] and (arc["arc_from"], arc["arc_to"]) == (["STOP"], ["RUNNING"])
    waived = got["test_waived[p]"]
    assert waived["links"] == [{"type": "issue", "url": LINK, "name": "fsm.legal-arc: vendor bug"}]
    assert _labels(waived)["waiver"] == ["known_issues[0]"] and _labels(waived)["rule"] == ["fsm.legal-arc"]
    assert got["test_pass[p]"]["links"] == []
    assert _labels(got["test_gated[p]"])["hazard"] == ["blocked-arc-hang"]
    params = {p["name"]: p for p in got["test_pass[p]"]["parameters"]}
    assert params["profile"]["value"] == "p" and params["devices"] == \
        {"name": "devices", "value": "sim0,sim1", "excluded": True}
    assert got["test_pass[p]"]["fullName"] == "suites.fsm.test_x#test_pass"
    (attachment,) = got["test_pass[p]"]["attachments"]
    assert (tmp_path / attachment["source"]).read_text() == "seed 42\n"
    # one test: the same history id in every run of the profile, another one in another profile
    again = _write(tmp_path / "again")
    other = _write(tmp_path / "other", profile="q")
    assert again["test_fail[p]"]["historyId"] == got["test_fail[p]"]["historyId"]
    assert other["test_fail[p]"]["historyId"] != got["test_fail[p]"]["historyId"]
    assert other["test_fail[p]"]["testCaseId"] == got["test_fail[p]"]["testCaseId"]
    assert len({d["historyId"] for d in got.values()}) == len(got)


def test_run_files(tmp_path):
    _write(tmp_path)
    executor = json.loads((tmp_path / "executor.json").read_text())
    assert executor["buildName"] == "session sess (runs p #7)" and executor["buildOrder"] == 7
    env = (tmp_path / "environment.properties").read_text().splitlines()
    assert "profile.p.flags=3" in env and "kernel.release=6.1.0" in env and "profile.p.devices=sim0,sim1" in env
    assert json.loads((tmp_path / "categories.json").read_text()) == allure_results.CATEGORIES


def test_run_command_loads_no_allure_pytest(tmp_path):
    args = _parser().parse_args(["run", "--reports", str(tmp_path), "--profile", "sim-p2p"])
    argv = pytest_args(args, [], ["sim-p2p"])
    assert "--alluredir" not in argv
    assert argv[argv.index("--vc-allure") + 1].endswith("allure-results")
    assert any(a == "-p" and b == "no:allure_pytest" for a, b in zip(argv, argv[1:]))


def test_run_works_with_allure_pytest_absent(tmp_path):
    """Modules named allure/allure_pytest that cannot be imported stand in for an uninstalled
    allure-pytest: the run still writes one result per test and no container."""
    shadow = tmp_path / "shadow"
    for name in ("allure", "allure_pytest", "allure_commons"):
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
    results = tmp_path / "allure"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), str(ROOT)]),
               VFIO_CONFORM_ALLURE_DIR=str(results))
    env.pop("VFIO_CONFORM_STORE", None)
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-p2p",
                           "--reports", str(tmp_path / "reports"), "-q", "--", "-k", "test_arc"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    files = list(results.iterdir())
    assert not [p for p in files if p.name.endswith("-container.json")]
    res = [json.loads(p.read_text()) for p in files if p.name.endswith("-result.json")]
    assert res and all({"name": "profile", "value": "sim-p2p"} in r["labels"] for r in res)
    assert all(r["status"] == "passed" for r in res)
    assert len({r["stop"] for r in res}) > 1 and all(r["start"] <= r["stop"] for r in res)  # each test's own end
    assert f"{len(res)} passed" in proc.stdout, proc.stdout[-2000:]
    assert all({"name": "framework", "value": "vfio-conform"} in r["labels"] for r in res)
