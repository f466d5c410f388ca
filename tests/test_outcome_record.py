"""One record per test: each outcome kind reaches the store, JUnit, Allure, the HTML report and the
run summary the same, and a typed skip is classified by its type (not its text)."""
import collections
import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from suite_runner import ROOT, write_profile
from vfio_conform.results.outcomes import OutcomeSkip, gated, infra_error, not_supported, skip_outcome
from vfio_conform.report.outcomes import shown
from vfio_conform.results import Outcome, ResultStore, TestRecord

LINK = "https://example.org/bug/7"
SHOULD_RULE = "precopy.initial-bytes-decrease"

SUITE = f'''
import pytest
from vfio_conform.suitelib.checks import expect
from vfio_conform.results.outcomes import gated, infra_error, not_supported


@pytest.mark.vc_spec("fsm.legal-arc")
def test_pass(profile):
    expect(True, "fsm.legal-arc", "holds")


@pytest.mark.vc_spec("fsm.legal-arc")
def test_fail(profile):
    expect(False, "fsm.legal-arc", "broken on purpose")


@pytest.mark.vc_spec("fsm.legal-arc")
def test_arc(profile):                      # waived by the profile: a known issue
    expect(False, "fsm.legal-arc", "waived on purpose")


def test_not_supported(profile):
    not_supported("infra-error: a message that looks like another kind")


def test_gated(profile):
    gated("would hang this kernel", "blocked-arc-hang")


def test_infra(profile):
    infra_error("the host lost the device")


def test_infra_raised(profile):
    raise RuntimeError("harness bug")


def test_skipped(profile):
    pytest.skip("not-supported: a plain skip stays skipped whatever it says")


@pytest.mark.vc_spec("{SHOULD_RULE}")
def test_should(profile):
    expect(False, "{SHOULD_RULE}", "initial bytes grew")
'''

#: test -> (stored outcome, shown outcome, JUnit/Allure outcome label)
EXPECTED = {
    "test_pass": ("pass", "pass"),
    "test_fail": ("fail", "fail"),
    "test_arc": ("known-issue", "known-issue"),
    "test_not_supported": ("not-supported", "not-supported"),
    "test_gated": ("gated", "gated"),
    "test_infra": ("infra-error", "infra-error"),
    "test_infra_raised": ("infra-error", "infra-error"),
    "test_skipped": ("skipped", "skipped"),
    "test_should": ("pass", "should-unmet"),
}
ALLURE_STATUS = {"pass": {"passed"}, "fail": {"failed"}, "infra-error": {"broken"},
                 "known-issue": {"skipped"}, "not-supported": {"skipped"}, "gated": {"skipped"},
                 "skipped": {"skipped"}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outcomes")
    (tmp / "test_kinds.py").write_text(SUITE)
    profile = write_profile(tmp, "sim-p2p", "demo", known_issues=[
        {"test": "test_arc[demo]", "rule": "fsm.legal-arc", "link": LINK, "reason": "waived here"}])
    store, junit, allure = tmp / "r.sqlite", tmp / "junit.xml", tmp / "allure"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp / "test_kinds.py"), "--rootdir", str(tmp), "-q", "-n", "2",
         "-p", "no:cacheprovider", "--vc-profile", str(profile), "--vc-store", str(store),
         f"--junitxml={junit}", f"--vc-allure={allure}"],
        capture_output=True, text=True, timeout=300, cwd=tmp)
    out = proc.stdout + proc.stderr
    page = tmp / "report.html"
    rep = subprocess.run([sys.executable, "-m", "vfio_conform", "report", "latest", "--store", str(store),
                          "--out", str(page)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    db = ResultStore(store, readonly=True)
    (meta,) = db.runs()
    rows = {r["test_id"].split("[")[0]: r for r in db.results(meta["id"])}
    db.close()
    return proc.returncode, out, rows, junit, allure, page.read_text()


def test_each_outcome_kind_is_stored_from_the_record(run):
    code, out, rows, *_ = run
    assert code == 1, out[-3000:]                         # a fail: non-conformant, as before
    assert {t: (r["outcome"], shown(r)) for t, r in rows.items()} == EXPECTED, out[-3000:]
    assert rows["test_should"]["should"] == SHOULD_RULE
    assert rows["test_should"]["message"].startswith("should not met: ")
    assert rows["test_arc"]["link"] == LINK and rows["test_arc"]["waiver_index"] == 0
    assert rows["test_arc"]["waiver_reason"] == "waived here"
    assert rows["test_gated"]["hazard"] == "blocked-arc-hang"
    assert rows["test_fail"]["rule"] == "fsm.legal-arc" and "fsm.legal-arc" in rows["test_fail"]["rules"]
    assert rows["test_pass"]["devices"] == "sim0,sim1"
    assert all(r["arc_from"] == "" for r in rows.values())


def test_junit_properties_carry_the_same_outcome(run):
    _, _, rows, junit, *_ = run
    got = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        got[case.get("name").split("[")[0]] = props
    assert {t: p.get("vc.outcome") for t, p in got.items()} == {t: r["outcome"] for t, r in rows.items()}
    assert got["test_should"]["vc.should"] == SHOULD_RULE
    assert got["test_arc"]["vc.link"] == LINK and got["test_arc"]["vc.waiver_index"] == "0"
    assert got["test_gated"]["vc.hazard"] == "blocked-arc-hang"
    assert all("vc_record" not in p for p in got.values())


def test_allure_labels_carry_the_same_outcome(run):
    _, _, rows, _, allure, _ = run
    got = {}
    for path in allure.glob("*-result.json"):
        data = json.loads(path.read_text())
        labels = collections.defaultdict(list)
        for label in data["labels"]:
            labels[label["name"]].append(label["value"])
        got[data["name"].split("[")[0]] = (labels, data["status"])
    assert {t: lab["outcome"] for t, (lab, _) in got.items()} == {t: [r["outcome"]] for t, r in rows.items()}
    for test, (_labels, status) in got.items():
        assert status in ALLURE_STATUS[rows[test]["outcome"]], (test, status)
    assert got["test_should"][0]["should_not_met"] == [SHOULD_RULE]
    assert got["test_fail"][0]["rule"] == ["fsm.legal-arc"]          # the violated rule
    assert got["test_gated"][0]["hazard"] == ["blocked-arc-hang"]


def test_html_report_shows_the_same_outcome(run):
    *_, rows, _, _, page = run
    for test, row in rows.items():
        m = re.search(re.escape(html.escape(row["test_id"])) + r'</td>\s*<td>\s*<span[^>]*data-outcome="([^"]+)"',
                      page)
        assert m, test
        assert m.group(1) == EXPECTED[test][1], test


def test_run_summary_counts_the_same_outcomes(run):
    _, out, rows, *_ = run
    line = next(ln for ln in out.splitlines() if ln.startswith("demo: run #"))
    counts = dict(kv.split("=") for kv in line.split("; ", 1)[1].split())
    assert {k: int(v) for k, v in counts.items()} == collections.Counter(r["outcome"] for r in rows.values())


@pytest.mark.parametrize("helper,args,outcome", [
    (not_supported, ("x",), Outcome.NOT_SUPPORTED), (gated, ("x", "h"), Outcome.GATED),
    (infra_error, ("x",), Outcome.INFRA_ERROR)])
def test_typed_skips_carry_their_kind(helper, args, outcome):
    with pytest.raises(pytest.skip.Exception) as info:
        helper(*args)
    assert isinstance(info.value, OutcomeSkip) and skip_outcome(info.value) is outcome
    assert info.value.msg == f"{outcome.value}: x"


def test_plain_skip_is_skipped_whatever_its_text():
    with pytest.raises(pytest.skip.Exception) as info:
        pytest.skip("not-supported: looks typed, is not")
    assert skip_outcome(info.value) is Outcome.SKIPPED


def test_record_round_trips_as_plain_data():
    rec = TestRecord("n::t", "t", Outcome.KNOWN_ISSUE, 0.5, "m", "r.x", "http://l", profile="p",
                     rules=("r.x", "r.y"), arc_from="STOP", arc_to="RUNNING", devices=("a", "b"),
                     waiver_index=2, waiver_reason="why", should=("s.z",), hazard="h")
    data = json.loads(json.dumps(rec.to_dict()))
    assert TestRecord.from_dict(data) == rec
    props = dict(rec.properties())
    assert props["vc.outcome"] == "known-issue" and props["vc.rules"] == "r.x r.y"
