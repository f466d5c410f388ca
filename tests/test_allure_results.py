"""Allure results written by the harness from its records through allure-python-commons: one result
file per test (no fixture containers), the status and message per outcome, labels (severity, epic /
feature / story, host), waiver links, history ids per host and profile, one category per rule for
Allure 2 and 3, the files of the run, results written as each test ends (a killed run keeps them),
and allure-pytest's own pytest plugin never loaded."""
from __future__ import annotations

import json
import operator
import os
import re
import subprocess
import sys
from collections import defaultdict


from suite_runner import ROOT
from vfio_conform.cli.app import _parser, pytest_args
from vfio_conform.outputs import allure_results
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


def _write(tmp_path, records=RECORDS, profile="p", host="hostA", extras=None) -> dict[str, dict]:
    prof = allure_results.ProfileRun(profile, list(records), backend="sim", devices=("sim0", "sim1"),
                                     driver="sim", flags=3, run_id=7,
                                     waivers=(KnownIssue("test_waived*", "fsm.legal-arc", LINK, "vendor bug"),))
    run = allure_results.AllureRun("sess", "6.1.0", host, [prof])
    assert allure_results.write(tmp_path, run, extras) == len(records)
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
        {"environment.properties", "categories.json", "executor.json", "allurerc.json"}
    assert len({data["uuid"] for data in got.values()}) == len(got)


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
    assert msg["test_fail[p]"] == "[fsm.state-after-set] SpecViolation: [fsm.state-after-set] broken"
    assert "statusDetails" not in got["test_pass[p]"]
    assert (got["test_pass[p]"]["start"], got["test_pass[p]"]["stop"]) == (999750, 1000000)


def _allure2_category(status: str, message: str) -> list[str]:
    """The categories.json entries a result falls in (Allure 2: every category whose status list has
    the result's and whose messageRegex matches the whole message)."""
    return [c["name"] for c in allure_results.categories() if status in c["matchedStatuses"]
            and re.fullmatch(c.get("messageRegex", "(?s).*"), message)]


def test_skips_fall_in_distinct_categories():
    assert _allure2_category("skipped", "known-issue: known issue, waived by ...") == ["Known issues (waived in profile)"]
    assert _allure2_category("skipped", "not-supported: no PRE_COPY") == ["Not supported by the device"]
    assert _allure2_category("skipped", "gated: would hang\nmore") == ["Gated hazards (not run on this kernel)"]
    assert _allure2_category("skipped", "skipped: not-supported: a plain skip") == []


def test_one_category_per_rule_for_allure_2_and_3(tmp_path):
    """A failure is in the category of the rule it broke, only that one (Allure 2 by the message the
    writer starts with `[rule]`, Allure 3 by the `rule` label); every rule of the catalogue has one."""
    from vfio_conform.model.spec import RULES
    got = _write(tmp_path)
    message = got["test_fail[p]"]["statusDetails"]["message"]
    assert _allure2_category("failed", message) == ["fsm.state-after-set"]
    assert _allure2_category("failed", "[fsm.legal-arc] on sim0: ... [fsm.state-after-set]") == ["fsm.legal-arc"]
    assert _allure2_category("broken", "the host lost the device") == ["Infrastructure errors (harness, lab, host)"]
    config = json.loads((tmp_path / "allurerc.json").read_text())
    rule_cats = [c for c in config["categories"] if c["name"] in RULES]
    assert [c["name"] for c in rule_cats] == list(RULES)
    labels = {x["name"]: x["value"] for x in got["test_fail[p]"]["labels"] if x["name"] in ("rule", "outcome")}

    def allure3(status: str, labels: dict) -> str | None:     # Allure 3: the first category that matches
        for cat in config["categories"]:
            m = cat["matchers"]
            if status in m["statuses"] and all(re.search(rx, labels.get(k, "")) for k, rx in m.get("labels", {}).items()):
                return cat["name"]
        return None
    assert allure3("failed", labels) == "fsm.state-after-set"
    assert allure3("failed", {"rule": "fsm.legal-arc-x"}) is None
    assert allure3("skipped", {"outcome": "known-issue"}) == "Known issues (waived in profile)"
    assert config["plugins"]["awesome"]["options"]["groupBy"][0] == "parentSuite"


def test_severity_from_the_rule_level(tmp_path):
    """must -> critical, a test that checks only `should` rules -> minor, no rule -> normal."""
    got = _write(tmp_path, [_rec("test_must[p]", "pass", rules=("fsm.legal-arc", "fsm.same-state-noop")),
                            _rec("test_should[p]", "pass", rules=("fsm.same-state-noop",)),
                            _rec("test_none[p]", "pass")])
    assert {n: _labels(d)["severity"] for n, d in got.items()} == \
        {"test_must[p]": ["critical"], "test_should[p]": ["minor"], "test_none[p]": ["normal"]}


def test_labels_links_parameters_and_ids(tmp_path):
    got = _write(tmp_path, extras={
        "suites/fsm/test_x.py::test_fail[p]": allure_results.TestExtras(trace="Traceback ... long",
                                                                        description="Checks a thing."),
        "suites/fsm/test_x.py::test_pass[p]": allure_results.TestExtras(stdout="seed 42\n")})
    fail = _labels(got["test_fail[p]"])
    assert fail["parentSuite"] == fail["profile"] == ["p"] and fail["suite"] == ["fsm"]
    assert fail["subSuite"] == ["test_x"] and fail["driver"] == ["sim"] and fail["outcome"] == ["fail"]
    assert fail["rule"] == ["fsm.state-after-set"]
    assert fail["checks"] == ["fsm.legal-arc", "fsm.state-after-set"]
    assert got["test_fail[p]"]["statusDetails"]["trace"] == "Traceback ... long"
    assert got["test_fail[p]"]["description"] == "Checks a thing."
    assert (fail["epic"], fail["feature"], fail["story"]) == (["fsm"], ["test_x"], ["fsm.state-after-set"])
    assert _labels(got["test_pass[p]"])["story"] == ["fsm.legal-arc"] and fail["host"] == ["hostA"]
    assert "rule" not in _labels(got["test_pass[p]"])
    arc = _labels(got["test_arc[p:STOP->RUNNING]"])
    assert arc["tag"] == arc["arc"] == ["STOP->RUNNING"] and (arc["arc_from"], arc["arc_to"]) == (["STOP"], ["RUNNING"])
    waived = got["test_waived[p]"]
    assert waived["links"] == [{"type": "issue", "url": LINK, "name": "fsm.legal-arc: vendor bug"}]
    assert _labels(waived)["waiver"] == ["known_issues[0]"] and _labels(waived)["rule"] == ["fsm.legal-arc"]
    assert "links" not in got["test_pass[p]"]          # allure-python-commons leaves empty lists out
    assert _labels(got["test_gated[p]"])["hazard"] == ["blocked-arc-hang"]
    params = {p["name"]: p for p in got["test_pass[p]"]["parameters"]}
    assert params["profile"]["value"] == "p" and params["devices"] == \
        {"name": "devices", "value": "sim0,sim1", "excluded": True}
    assert got["test_pass[p]"]["fullName"] == "suites.fsm.test_x#test_pass"
    (attachment,) = got["test_pass[p]"]["attachments"]
    assert (tmp_path / attachment["source"]).read_text() == "seed 42\n"
    assert params["host"] == {"name": "host", "value": "hostA"}
    # one test: the same history id in every run of the profile on the host, another one in another
    # profile or on another host (a fleet report of two hosts merges, it counts no retries)
    again = _write(tmp_path / "again")
    other = _write(tmp_path / "other", profile="q")
    elsewhere = _write(tmp_path / "elsewhere", host="hostB")
    assert again["test_fail[p]"]["historyId"] == got["test_fail[p]"]["historyId"]
    assert other["test_fail[p]"]["historyId"] != got["test_fail[p]"]["historyId"]
    assert elsewhere["test_fail[p]"]["historyId"] != got["test_fail[p]"]["historyId"]
    assert other["test_fail[p]"]["testCaseId"] == got["test_fail[p]"]["testCaseId"] == \
        elsewhere["test_fail[p]"]["testCaseId"]
    assert len({d["historyId"] for d in got.values()}) == len(got)


def test_device_operations_of_a_failing_test_are_its_steps(tmp_path):
    """The trail of a failing test: one step per operation with its errno, the interrupted one broken;
    a passing test gets none."""
    from vfio_conform.device.lastop import INTERRUPTED
    ops = ((("sim0", ("set", 2), 10.0), 0), (("sim0", ("set", 9), 11.0), 22),
           (("sim0", ("read(data_fd)", 4096), 12.0), INTERRUPTED))
    extras = {f"suites/fsm/test_x.py::{t}": allure_results.TestExtras(operations=ops, clock=1000.0,
                                                                     kernel_log="WARNING: at x\n")
              for t in ("test_fail[p]", "test_pass[p]")}
    got = _write(tmp_path, extras=extras)
    steps = got["test_fail[p]"]["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("SET MIG_DEVICE_STATE RUNNING on sim0", "passed"),
        ("SET MIG_DEVICE_STATE INVALID(9) on sim0 -> EINVAL", "passed"),
        ("read(data_fd)(4096) on sim0: interrupted by the time limit, never returned", "broken")]
    assert (steps[0]["start"], steps[1]["start"]) == (1010000, 1011000)
    assert "steps" not in got["test_pass[p]"]
    (log,) = [a for a in got["test_fail[p]"]["attachments"] if a["name"] == "kernel log"]
    assert (tmp_path / log["source"]).read_text() == "WARNING: at x\n"


def test_the_trail_keeps_each_operation_and_only_the_errnos_that_are_not_zero():
    """The trail holds each operation as it returned and, after one that failed, its errno; read
    back as (operation, errno) pairs in order. A window that cut an operation from its errno drops
    the errno; the last operations are kept."""
    from vfio_conform.device.lastop import INTERRUPTED, _LastOperation, pairs
    last = _LastOperation()
    last.record(5)
    for state, code in ((2, 0), (9, 22), (1, 0), (3, 0), (4, INTERRUPTED)):
        last.note("sim0", "set", state)
        last.returned(code)
    trail = last.taken()
    assert last.keep is None and last.trail is None
    got = pairs(trail)
    assert [(op[1], code) for op, code in got] == [(("set", 1), 0), (("set", 3), 0), (("set", 4), INTERRUPTED)]
    assert list(trail)[0] == 22         # the errno whose operation the window dropped: left out
    assert pairs([("sim0", ("set", 2), 1.0), 22]) == ((("sim0", ("set", 2), 1.0), 22),)


def test_the_writer_writes_what_allure_python_commons_writes(tmp_path):
    """The results writer's file (labels and parameters shared between results, their JSON encoded
    once) holds the value allure-python-commons' own writer makes of the same model object
    (json.dump of attr.asdict with empty values left out), named by the result's uuid."""
    import attr
    from allure_commons.model2 import Attachment, Label, Link, Parameter, StatusDetails, TestResult, TestStepResult
    user = TestResult(labels=[Label(name="owner", value="team-x"), Label(name="severity", value="blocker")],
                      parameters=[Parameter(name="seed", value="7", excluded=False)],
                      links=[Link(type="link", url="https://example.org/d", name="design")],
                      steps=[TestStepResult(name="look", status="passed", start=1, stop=2,
                                            parameters=[Parameter(name="n", value="1")],
                                            attachments=[Attachment(name="notes", source="a.txt", type="text/plain")],
                                            steps=[TestStepResult(name="inner", status="failed")])])
    ops = ((("sim0", ("set", 9), 11.0), 22),)
    prof = allure_results.ProfileRun("p", list(RECORDS), backend="sim", devices=("sim0",), driver="sim",
                                     waivers=(KnownIssue("test_waived*", "fsm.legal-arc", LINK, "vendor bug"),))
    run = allure_results.AllureRun("sess", "6.1.0", "hostA", [prof])
    writer = allure_results.ResultsWriter(str(tmp_path))
    for rec in RECORDS:
        extras = allure_results.TestExtras(description="doc", operations=ops, user=user, stdout="out\n")
        res = allure_results.result(rec, prof, run, extras)
        allure_results.write_result(writer, res, allure_results.attachments(extras))
        expected = json.loads(json.dumps(attr.asdict(res, filter=lambda _, v: v or v is False)))
        assert json.loads((tmp_path / f"{res.uuid}-result.json").read_text()) == expected
        assert len(expected["labels"]) > 10 and expected["parameters"]
    for rec in RECORDS * 2:     # without allure.* calls: every label and parameter shared
        res = allure_results.result(rec, prof, run, allure_results.TestExtras(description="doc"))
        allure_results.write_result(writer, res)
        expected = json.loads(json.dumps(attr.asdict(res, filter=lambda _, v: v or v is False)))
        assert json.loads((tmp_path / f"{res.uuid}-result.json").read_text()) == expected
    twice = [allure_results.result(RECORDS[0], prof, run) for _ in range(2)]
    assert all(map(operator.is_, twice[0].labels, twice[1].labels))     # shared, not built per result
    assert all(map(operator.is_, twice[0].parameters, twice[1].parameters))
    assert json.loads(allure_results.encode(StatusDetails(message="m"))) == {"message": "m"}


def test_run_files(tmp_path):
    _write(tmp_path)
    executor = json.loads((tmp_path / "executor.json").read_text())
    assert executor["buildName"] == "session sess (runs p #7)" and executor["buildOrder"] == 7
    env = (tmp_path / "environment.properties").read_text().splitlines()
    assert "profile.p.flags=3" in env and "kernel.release=6.1.0" in env and "profile.p.devices=sim0,sim1" in env
    assert json.loads((tmp_path / "categories.json").read_text()) == allure_results.categories()
    assert "host=hostA" in env


def test_run_command_loads_no_allure_pytest(tmp_path):
    args = _parser().parse_args(["run", "--reports", str(tmp_path), "--profile", "sim-p2p"])
    argv = pytest_args(args, [], ["sim-p2p"])
    assert "--alluredir" not in argv
    assert argv[argv.index("--vc-allure") + 1].endswith("allure-results")
    assert any(a == "-p" and b == "no:allure_pytest" for a, b in zip(argv, argv[1:]))


def _run(tmp_path, *extra, env_extra=None, profile="sim-p2p"):
    results = tmp_path / "allure"
    env = dict(os.environ, PYTHONPATH=str(ROOT), VFIO_CONFORM_ALLURE_DIR=str(results))
    env.update(env_extra or {})
    env.pop("VFIO_CONFORM_STORE", None)
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", profile,
                           "--reports", str(tmp_path / "reports"), "-q", *extra],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    return proc, results


def test_run_writes_one_result_per_test_as_it_ends_without_allure_pytests_plugin(tmp_path):
    (tmp_path / "vc_allure_probe.py").write_text(PROBE)
    proc, results = _run(tmp_path, "--", "-k", "test_arc", "-p", "vc_allure_probe",
                         env_extra={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
                                    "VC_PROBE_OUT": str(tmp_path / "probe.json")})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    files = list(results.iterdir())
    assert not [p for p in files if p.name.endswith("-container.json")]
    res = [json.loads(p.read_text()) for p in files if p.name.endswith("-result.json")]
    assert res and all({"name": "profile", "value": "sim-p2p"} in r["labels"] for r in res)
    assert all(r["status"] == "passed" for r in res)
    assert len({r["stop"] for r in res}) > 1 and all(r["start"] <= r["stop"] for r in res)  # each test's own end
    assert f"{len(res)} passed" in proc.stdout, proc.stdout[-2000:]
    assert all({"name": "framework", "value": "vfio-conform"} in r["labels"] for r in res)
    seen = json.loads((tmp_path / "probe.json").read_text())
    assert seen["allure_pytest_loaded"] is False
    # each test's result was on disk before the next test began
    assert seen["results_before_last_test"] == len(res) - 1


PROBE = '''
import json, os, pathlib

state = {"results_before_last_test": 0, "allure_pytest_loaded": None}


def pytest_configure(config):
    state["allure_pytest_loaded"] = config.pluginmanager.has_plugin("allure_pytest")


def pytest_runtest_setup(item):
    out = pathlib.Path(os.environ["VFIO_CONFORM_ALLURE_DIR"])
    state["results_before_last_test"] = len(list(out.glob("*-result.json")))


def pytest_unconfigure(config):
    pathlib.Path(os.environ["VC_PROBE_OUT"]).write_text(json.dumps(state))
'''


KILLED_SUITE = '''
import os, signal


def test_a(profile):
    pass


def test_b(profile):
    pass


def test_c(profile):
    os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_killed_run_keeps_the_allure_results_of_the_tests_it_finished(tmp_path):
    (tmp_path / "test_killed.py").write_text(KILLED_SUITE)
    results = tmp_path / "allure"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_killed.py"), "-q",
                           "-p", "no:cacheprovider", "-p", "no:allure_pytest", "--rootdir", str(tmp_path),
                           "--vc-profile", "sim-p2p", "--vc-no-store", f"--vc-allure={results}"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == -9, proc.stdout + proc.stderr
    res = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["status"]
           for p in results.glob("*-result.json")}
    assert res == {"test_a[sim-p2p]": "passed", "test_b[sim-p2p]": "passed"}
    assert {"categories.json", "environment.properties", "executor.json", "allurerc.json"} <= \
        {p.name for p in results.iterdir()}
    assert not list(results.glob("*.tmp"))


def test_allure_output_without_allure_python_commons_is_a_one_line_usage_error(tmp_path):
    """Modules named allure/allure_commons that cannot be imported stand in for an uninstalled
    allure-pytest: the run stops before any test with one line naming the package (exit 2)."""
    shadow = tmp_path / "shadow"
    for name in ("allure", "allure_pytest", "allure_commons"):
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
    proc, results = _run(tmp_path, "--", "-k", "test_arc",
                         env_extra={"PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)])})
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    assert "needs allure-pytest" in proc.stdout + proc.stderr
    assert not results.exists() or not list(results.glob("*-result.json"))


VENDOR = '''
import allure


def pytest_vc_verify_state(source, destination, profile, tag):
    with allure.step(f"vendor check of tag {tag}"):
        allure.attach(f"{destination.name} holds {tag}", name="vendor state",
                      attachment_type=allure.attachment_type.TEXT)
    allure.dynamic.label("vendor", "acme")
    allure.dynamic.severity(allure.severity_level.BLOCKER)
    return []
'''


def test_allure_calls_in_a_vendor_verify_hook_show_up_on_the_test(tmp_path):
    (tmp_path / "vc_allure_vendor.py").write_text(VENDOR)
    proc, results = _run(tmp_path, "--no-store", "-n", "0", "--", "-k", "test_round_trip_verified",
                         "-p", "vc_allure_vendor",
                         env_extra={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert res
    for data in res:
        (step,) = [s for s in data["steps"] if s["name"].startswith("vendor check of tag ")]
        (attachment,) = step["attachments"]
        assert (results / attachment["source"]).read_text().endswith(f"holds {step['name'].split()[-1]}")
        labels = _labels(data)
        assert labels["vendor"] == ["acme"] and labels["severity"] == ["blocker"]   # replaces the rule's
        assert labels["profile"] == ["sim-p2p"]


def test_a_test_whose_worker_died_has_a_broken_result(tmp_path):
    """xdist: the worker that ran a test died in it, so it wrote nothing; the controller writes the
    test's infra-error result; every other test has its own."""
    proc, results = _run(tmp_path, "--no-store", "-n", "2", "--", "-k", "test_arc and RUNNING",
                         "-p", "vc_worker_crash",
                         env_extra={"PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "vc_plugins"), str(ROOT)]),
                                    "VC_CRASH_TEST": "sim-p2p:RUNNING->STOP]"})
    assert proc.returncode == 3, (proc.stdout + proc.stderr)[-3000:]
    res = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    crashed = [d for d in res if d["name"].startswith("test_arc[sim-p2p:RUNNING->STOP]")]
    assert crashed, sorted(d["name"] for d in res)
    for data in crashed:
        assert data["status"] == "broken" and "crashed" in data["statusDetails"]["message"], data
        assert {"name": "outcome", "value": "infra-error"} in data["labels"]
    assert len(res) > len(crashed) and all(d["status"] == "passed" for d in res if d not in crashed)
