"""Profile waivers: they name a real test function and a rule, waive only that rule, keep the
violation text, and the ones that waived nothing are listed, stored and reported."""
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from suite_runner import ROOT, run_suites, write_profile
from vfio_conform.base.errors import ConfigError
from vfio_conform.targets.select import check_profile
from vfio_conform.targets.waivers import suite_functions
from vfio_conform.profile import load_profile

LINK = "https://example.org/bug/1"
DMA = "depth/test_dma_logging.py"


def _waiver(test, rule, reason="r"):
    return {"test": test, "rule": rule, "link": LINK, "reason": reason}


def _known_issues_yaml(*entries: str) -> str:
    return "known_issues:\n" + "".join(f"  - {{{e}}}\n" for e in entries)


GOOD = "name: demo\nbackend: sim\ndevices: [sim0, sim1]\nmigration:\n  flags: [STOP_COPY, P2P]\n"


@pytest.mark.parametrize("pattern", ["*", "", "?", "test_*", "*[mtty*", "test_arc*", "[test_arc]",
                                     "suites/fsm/test_arcs.py::test_arc", "test_arc ", "TEST_arc"])
def test_waiver_that_names_no_test_function_is_refused(tmp_path, pattern):
    path = tmp_path / "w.yaml"
    path.write_text(GOOD + _known_issues_yaml(
        f"test: 'test_arc[demo:*', rule: fsm.legal-arc, link: '{LINK}', reason: ok",
        f"test: '{pattern}', rule: fsm.legal-arc, link: '{LINK}', reason: everything"))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}:8: known_issues.1.test: {pattern!r} does not name a test")


def test_waiver_naming_a_function_absent_from_the_suites_is_refused(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(GOOD + _known_issues_yaml(
        f"test: 'test_arc[demo:*', rule: fsm.legal-arc, link: '{LINK}', reason: ok",
        f"test: 'test_no_such_thing[demo*', rule: fsm.legal-arc, link: '{LINK}', reason: typo"))
    profile = load_profile(path)           # the shape is fine; the suites do not have it
    with pytest.raises(ConfigError) as info:
        check_profile(profile)
    assert str(info.value).startswith(
        f"{path}:8: known_issues.1.test: no test function 'test_no_such_thing' in the suites")
    assert {"test_arc", "test_dma_start_twice_fails",
            "test_resume_rejects_corrupt_header"} <= suite_functions()


@pytest.mark.parametrize("entry,field,words", [
    (f"test: test_arc, link: '{LINK}', reason: r", "known_issues.0.rule", "is required"),
    (f"test: test_arc, rule: fsm.no-such-rule, link: '{LINK}', reason: r", "known_issues.0.rule",
     "'fsm.no-such-rule' is not a rule id"),
])
def test_waiver_names_a_known_rule(tmp_path, entry, field, words):
    path = tmp_path / "w.yaml"
    path.write_text(GOOD + _known_issues_yaml(entry))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}:7: {field}: {words}")


def test_cli_refuses_a_match_everything_waiver_before_running(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(GOOD + _known_issues_yaml(f"test: '*', rule: fsm.legal-arc, link: '{LINK}', reason: x"))
    out = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", str(path),
                          "--reports", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr
    assert out.stderr.strip().splitlines() == [
        f"vfio-conform: error: {path}:7: known_issues.0.test: '*' does not name a test function "
        "(start with the whole function name, e.g. 'test_arc[mtty:STOP->*')"]
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def waived_run(tmp_path_factory):
    """sim-p2p-precopy with dma_start_twice_ok (breaks dma.start-once in test_dma_start_twice_fails)
    and four waivers: the right rule, another rule on the same test, one whose test passes, and
    one whose pattern matches no test of the run."""
    tmp = tmp_path_factory.mktemp("waivers")
    profile = write_profile(tmp, "sim-p2p-precopy", "waived", faults=[{"name": "dma_start_twice_ok"}],
                            known_issues=[
                                _waiver("test_dma_start_twice_fails[waived*", "dma.start-once",
                                        "the stub accepts a second START"),
                                _waiver("test_dma_report_without_start_fails[waived*",
                                        "dma.report-needs-start", "fixed since"),
                                _waiver("test_arc[waived:RUNNING->STOP]", "fsm.legal-arc", "not run"),
                            ])
    junit = tmp / "junit.xml"
    code, rows, out = run_suites(profile, tmp, "--junitxml", str(junit), "-rN", areas=(DMA,))
    return profile, tmp, code, rows, out, junit


@pytest.fixture(scope="module")
def wrong_rule_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wrong-rule")
    profile = write_profile(tmp, "sim-p2p-precopy", "wrongrule", faults=[{"name": "dma_start_twice_ok"}],
                            known_issues=[_waiver("test_dma_start_twice_fails[wrongrule*", "dma.start-args",
                                                  "waives the page-size check only")])
    return run_suites(profile, tmp, "-k", "test_dma_start_twice_fails", areas=(DMA,))


def test_a_waiver_waives_only_its_rule(waived_run, wrong_rule_run):
    code, rows, out = wrong_rule_run
    (row,) = [r for r in rows if r["test_id"].startswith("test_dma_start_twice_fails")]
    assert row["outcome"] == "fail" and row["rule"] == "dma.start-once", row
    assert code != 0, out[-2000:]
    _, _, code, rows, out, _ = waived_run
    (row,) = [r for r in rows if r["test_id"].startswith("test_dma_start_twice_fails")]
    assert row["outcome"] == "known-issue" and row["rule"] == "dma.start-once", row


def test_a_known_issue_keeps_the_violation_and_the_waiver(waived_run):
    _, _, _, rows, _, junit = waived_run
    (row,) = [r for r in rows if r["outcome"] == "known-issue"]
    violation = "[dma.start-once] on sim0: a second DMA_LOGGING_START without STOP succeeded"
    assert row["message"].startswith(violation), row["message"]
    assert LINK in row["message"] and "the stub accepts a second START" in row["message"]
    skipped = [s.get("message") for s in ET.parse(junit).iter("skipped")
               if "dma.start-once" in (s.get("message") or "")]
    assert skipped and violation in skipped[0] and LINK in skipped[0], skipped


def test_unused_waivers_are_listed_stored_and_reported(waived_run, tmp_path):
    profile, tmp, _, _, out, _ = waived_run
    assert "unused waivers" in out, out[-3000:]
    assert (f"{profile}:" in out and "known_issues[1] (test_dma_report_without_start_fails[waived*, "
            "rule dma.report-needs-start) waived nothing: its 1 test(s) had no dma.report-needs-start "
            "failure") in out, out[-3000:]
    assert ("known_issues[2] (test_arc[waived:RUNNING->STOP], rule fsm.legal-arc) waived nothing: "
            "no test run matched it") in out
    assert "known_issues[0]" not in out.split("unused waivers")[1]
    db = sqlite3.connect(tmp / f"{profile.stem}.sqlite")
    stored = db.execute("SELECT idx, test, rule, matched, waived FROM waivers ORDER BY idx").fetchall()
    assert stored == [(0, "test_dma_start_twice_fails[waived*", "dma.start-once", 1, 1),
                      (1, "test_dma_report_without_start_fails[waived*", "dma.report-needs-start", 1, 0),
                      (2, "test_arc[waived:RUNNING->STOP]", "fsm.legal-arc", 0, 0)]
    html = tmp_path / "r.html"
    rep = subprocess.run([sys.executable, "-m", "vfio_conform", "report", "latest", "--store",
                          str(tmp / f"{profile.stem}.sqlite"), "--out", str(html)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert rep.returncode == 0, rep.stderr
    page = html.read_text()
    section = page.split("Waivers that waived nothing (2)")[1].split("</table>")[0]
    assert "test_dma_report_without_start_fails[waived*" in section
    assert "test_arc[waived:RUNNING-&gt;STOP]" in section
    assert "test_dma_start_twice_fails" not in section
    failures = page.split("<h3>Failures")[1].split("</table>")[0]
    assert "a second DMA_LOGGING_START without STOP succeeded" in failures and LINK in failures
