"""KTAP version 1 from the run's TestRecords (what KernelCI and kselftest consumers parse).

One subtest per profile, one result line per test, with the directives KTAP
(Documentation/dev-tools/ktap.rst) and kselftest define:

- pass: `ok N name`;
- not-supported, gated, skipped: `ok N name # SKIP <outcome>: <reason>`;
- known-issue (a waived failure): `ok N name # XFAIL known-issue [rule]: <reason>` (kselftest's
  ksft_test_result_xfail);
- fail (the device broke a rule): `not ok N name`, after `# fail: ...` diagnostic lines;
- infra-error: `not ok N name # TIMEOUT <reason>` when a time limit ran out (the per-test timer, a
  hung operation), else `not ok N name # ERROR <reason>`, after `# infra-error: ...` lines.

A directive a parser does not know falls back to ok / not ok (KTAP), so a plain TAP consumer still
sees every failure. A profile is `not ok` when one of its tests failed, `not ok ... # ERROR` when
only infrastructure errors went wrong, else `ok`.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..base.outfile import write_text
from ..results import Outcome, TestRecord
from .junit import SKIP_TYPES, SuiteInput

INDENT = "    "
#: Diagnostic lines per failed test (the rest of a long message is left to JUnit and the store).
MAX_DIAGNOSTIC_LINES = 5


def _name(text: str) -> str:
    """A test name KTAP can carry: no '#' (starts a directive), no line breaks."""
    return " ".join(text.replace("#", "%23").split())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(rec: TestRecord, line: str) -> str:
    """A message line without pytest's 'Skipped: ' and the outcome it already names."""
    return line.removeprefix("Skipped: ").removeprefix(f"{rec.outcome.value}: ")


#: An infra-error message that says a time limit ran out (plugin/timeout.py's TestTimeout, a
#: watchdog's "hung in <operation>"): KTAP's TIMEOUT directive instead of ERROR.
_TIMED_OUT = re.compile(r"\bTestTimeout\b|\btest exceeded timeouts\.|\bhung in |\btimed out\b")


def directive(rec: TestRecord) -> str:
    """The KTAP directive of a record's result line ('' for pass and fail)."""
    if rec.outcome is Outcome.INFRA_ERROR:
        return "TIMEOUT" if _TIMED_OUT.search(rec.message) else "ERROR"
    if rec.outcome is Outcome.KNOWN_ISSUE:
        return "XFAIL"
    if rec.outcome in SKIP_TYPES:
        return "SKIP"
    return ""


def _result(num: int, rec: TestRecord) -> list[str]:
    name = _name(rec.test_id)
    if rec.outcome is Outcome.PASS:
        return [f"ok {num} {name}"]
    first = _reason(rec, rec.message.splitlines()[0]) if rec.message else ""
    kind = directive(rec)
    if kind in ("SKIP", "XFAIL"):
        head = rec.outcome.value + (f" [{rec.rule}]" if kind == "XFAIL" and rec.rule else "")
        return [f"ok {num} {name} # {kind} {_one_line(f'{head}: {first}' if first else head)}"]
    lines = [f"# {rec.outcome.value}: {_one_line(_reason(rec, line))}"
             for line in (rec.message or rec.outcome.value).splitlines()[:MAX_DIAGNOSTIC_LINES]
             if line.strip()]
    if not kind:
        return [*lines, f"not ok {num} {name}"]
    return [*lines, f"not ok {num} {name} # {kind} {_one_line(first or rec.outcome.value)}"]


def _profile_line(num: int, suite: SuiteInput) -> str:
    name = _name(suite.profile)
    if any(r.outcome is Outcome.FAIL for r in suite.records):
        return f"not ok {num} {name}"
    errors = sum(r.outcome is Outcome.INFRA_ERROR for r in suite.records)
    if errors:
        return f"not ok {num} {name} # ERROR {errors} infrastructure error(s)"
    return f"ok {num} {name}"


def render(suites: list[SuiteInput]) -> str:
    out = ["KTAP version 1", f"1..{len(suites)}"]
    for num, suite in enumerate(suites, 1):
        if not suite.records:           # a plan of 0 subtests is an error to KTAP parsers
            out.append(f"ok {num} {_name(suite.profile)} # SKIP no test of this profile ran")
            continue
        out += [f"{INDENT}KTAP version 1", f"{INDENT}# Subtest: {_name(suite.profile)}",
                f"{INDENT}1..{len(suite.records)}"]
        if suite.selection:
            out.append(f"{INDENT}# selection: {suite.selection} tests of the profile's suite"
                       + (" (a subset: not a qualification)" if suite.selection.startswith("subset") else ""))
        if suite.environment is not None:
            env = suite.environment
            out.append(f"{INDENT}# kernel {env.kernel_release}; backend {env.backend}; "
                       f"devices {', '.join(d.device for d in env.devices)}")
        for test_num, rec in enumerate(suite.records, 1):
            out += [INDENT + line for line in _result(test_num, rec)]
        out.append(_profile_line(num, suite))
    return "\n".join(out) + "\n"


def write(path: str | Path, suites: list[SuiteInput]) -> Path:
    """Write the KTAP text through the shared output writer (in place for a device or FIFO)."""
    return write_text(path, render(suites), "KTAP output")
