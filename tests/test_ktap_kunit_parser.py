"""What the kernel's own KTAP parser (tools/testing/kunit, 6.12) shows of the harness's KTAP, run as
a CI job runs it (`kunit.py parse FILE`): its exit code as for any KTAP (0 when everything passed or
was skipped, 1 on a failure), each test's diagnostic lines printed above its result, so an
infrastructure error reads `# infra-error: ...` and a driver failure `# fail: ...`; and why the
parser's summary cannot count them apart (docs/ci-formats.md, "What the kernel's parser shows"):
it has no status for ERROR or TIMEOUT, and its only other one, crashed, comes with a parse error."""
from __future__ import annotations

import re

import kunit_tools
from vfio_conform.outputs import ktap
from vfio_conform.outputs.junit import SuiteInput
from vfio_conform.results import Outcome, TestRecord


def _rec(name: str, outcome: Outcome, message: str = "", **kw) -> TestRecord:
    return TestRecord(f"suites/fsm/test_x.py::{name}[p]", f"{name}[p]", outcome, 0.1, message,
                      profile="p", **kw)


PASS = _rec("test_pass", Outcome.PASS)
SKIP = _rec("test_ns", Outcome.NOT_SUPPORTED, "Skipped: not-supported: no PRE_COPY")
WAIVED = _rec("test_waived", Outcome.KNOWN_ISSUE, "SpecViolation: [fsm.legal-arc] waived",
              rule="fsm.legal-arc", waiver_index=0, link="https://example.org/1", waiver_reason="vendor")
FAIL = _rec("test_fail", Outcome.FAIL, "SpecViolation: [fsm.state-after-set] broken on purpose",
            rule="fsm.state-after-set")
INFRA = _rec("test_infra", Outcome.INFRA_ERROR, "the host lost the device")
TIMEOUT = _rec("test_hang", Outcome.INFRA_ERROR, "TestTimeout: test exceeded timeouts.test = 1s in call")


def _ktap(*records: TestRecord) -> str:
    return ktap.render([SuiteInput("p", list(records))])


def _summary(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if "Testing complete." in ln]
    return line.split("Testing complete. ", 1)[1]


def test_kunit_parse_exits_0_on_a_passing_run_and_1_on_a_failing_one(tmp_path):
    ok = kunit_tools.kunit_cli(_ktap(PASS, SKIP, WAIVED), tmp_path / "ok")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _summary(ok.stdout) == "Ran 3 tests: passed: 2, skipped: 1"       # XFAIL is ok, SKIP skipped
    bad = kunit_tools.kunit_cli(_ktap(PASS, FAIL), tmp_path / "bad")
    assert bad.returncode == 1 and _summary(bad.stdout) == "Ran 2 tests: passed: 1, failed: 1"
    assert "[ERROR]" not in bad.stdout + ok.stdout          # no parse error either way


def test_kunit_parse_prints_an_infra_error_as_one_above_its_result(tmp_path):
    """The parser's printed results: the infra-error's and the timeout's own `# infra-error:` lines
    right above their `[FAILED]` line, the failure's `# fail:` line above its own; the run exits 1
    (an infra error never reads as passed) and the summary, which has no count for them, says failed."""
    out = kunit_tools.kunit_cli(_ktap(PASS, FAIL, INFRA, TIMEOUT), tmp_path)
    assert out.returncode == 1
    lines = [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", ln) for ln in out.stdout.splitlines()]
    for name, note in (("test_infra[p]", "# infra-error: the host lost the device"),
                       ("test_hang[p]", "# infra-error: TestTimeout: test exceeded timeouts.test = 1s in call"),
                       ("test_fail[p]", "# fail: SpecViolation: [fsm.state-after-set] broken on purpose")):
        at = lines.index(f"[FAILED] {name}")
        assert lines[at - 1] == note, lines
    assert not any("infra-error" in ln for ln in lines[:lines.index("[FAILED] test_fail[p]")])
    assert _summary(out.stdout) == "Ran 4 tests: passed: 1, failed: 3"
    assert "[ERROR]" not in out.stdout
    text = _ktap(PASS, FAIL, INFRA, TIMEOUT)       # the directive is on the result line
    assert kunit_tools.directives(text) == {"test_pass[p]": "", "test_fail[p]": "", "test_infra[p]": "ERROR",
                                            "test_hang[p]": "TIMEOUT", "p": ""}


def test_the_parser_has_a_status_only_for_skip_among_the_directives():
    """kunit_parser.parse_test_result: `# SKIP` is the one directive with a status of its own; a
    `not ok` line with ERROR or TIMEOUT is FAILURE, an `ok` line with XFAIL SUCCESS. (Should a newer
    parser give ERROR/TIMEOUT a status, this fails, and the harness's KTAP can use it.)"""
    text = ("KTAP version 1\n1..5\nnot ok 1 a # ERROR lost\nnot ok 2 b # TIMEOUT 30 seconds\n"
            "ok 3 c # XFAIL known\nok 4 d # SKIP no\nnot ok 5 e\n")
    test = kunit_tools.parse(text)
    assert {t.name: t.status.name for t in test.subtests} == {
        "a": "FAILURE", "b": "FAILURE", "c": "SUCCESS", "d": "SKIPPED", "e": "FAILURE"}
    assert (test.counts.failed, test.counts.crashed, test.counts.errors) == (3, 0, 0)


def test_the_parsers_crashed_count_comes_only_with_a_parse_error_and_outranks_failures():
    """The one other status, TEST_CRASHED ('crashed: N'), is what the parser gives a subtest its
    parent's plan promised and that never came (parse_test: 'missing expected subtest!'), or a test
    without its result line: each is also a parse error, and crashed outranks failed in
    TestCounts.get_status, so a profile with a driver failure would read CRASHED. Written so, the
    infra-error below claims a subtest that never existed; the harness does not write it."""
    text = ("KTAP version 1\n1..1\n"
            "  KTAP version 1\n  # Subtest: p\n  1..2\n"
            "  # fail: [fsm.state-after-set] broken\n  not ok 1 test_fail\n"
            "    KTAP version 1\n    # Subtest: test_infra\n    1..1\n"
            "  # infra-error: the host lost the device\n  not ok 2 test_infra # ERROR the host lost the device\n"
            "not ok 1 p\n")
    test = kunit_tools.parse(text)
    (prof,) = test.subtests
    assert (prof.counts.failed, prof.counts.crashed, prof.counts.errors) == (1, 1, 1)
    assert prof.status.name == "TEST_CRASHED"           # the failure no longer shows at the profile
    ours = kunit_tools.parse(_ktap(FAIL, INFRA))
    assert (ours.counts.failed, ours.counts.crashed, ours.counts.errors) == (2, 0, 0)
    assert ours.subtests[0].status.name == "FAILURE"
