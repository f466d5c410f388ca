"""KTAP version 1 from the run's TestRecords (what KernelCI and kselftest consumers parse).

One subtest per profile, one result line per test. A test that did not run or whose failure is
waived is `ok N name # SKIP <outcome>: <reason>` (known-issue, not-supported, gated, skipped); a
spec violation and an infrastructure error are `not ok`, preceded by `# fail: ...` /
`# infra-error: ...` diagnostic lines. A profile is `ok` unless one of its tests is `not ok`.
"""
from __future__ import annotations

from pathlib import Path

from ..outfile import write_text
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


def _result(num: int, rec: TestRecord) -> list[str]:
    name = _name(rec.test_id)
    if rec.outcome is Outcome.PASS:
        return [f"ok {num} {name}"]
    first = _reason(rec, rec.message.splitlines()[0]) if rec.message else ""
    if rec.outcome in SKIP_TYPES:
        reason = _one_line(f"{rec.outcome.value}: {first}" if first else rec.outcome.value)
        return [f"ok {num} {name} # SKIP {reason}"]
    lines = [f"# {rec.outcome.value}: {_one_line(_reason(rec, line))}"
             for line in (rec.message or rec.outcome.value).splitlines()[:MAX_DIAGNOSTIC_LINES]
             if line.strip()]
    return [*lines, f"not ok {num} {name}"]


def render(suites: list[SuiteInput]) -> str:
    out = ["KTAP version 1", f"1..{len(suites)}"]
    for num, suite in enumerate(suites, 1):
        if not suite.records:           # a plan of 0 subtests is an error to KTAP parsers
            out.append(f"ok {num} {_name(suite.profile)} # SKIP no test of this profile ran")
            continue
        out += [f"{INDENT}KTAP version 1", f"{INDENT}# Subtest: {_name(suite.profile)}",
                f"{INDENT}1..{len(suite.records)}"]
        if suite.environment is not None:
            env = suite.environment
            out.append(f"{INDENT}# kernel {env.kernel_release}; backend {env.backend}; "
                       f"devices {', '.join(d.device for d in env.devices)}")
        for test_num, rec in enumerate(suite.records, 1):
            out += [INDENT + line for line in _result(test_num, rec)]
        bad = any(r.outcome in (Outcome.FAIL, Outcome.INFRA_ERROR) for r in suite.records)
        out.append(f"{'not ok' if bad else 'ok'} {num} {_name(suite.profile)}")
    return "\n".join(out) + "\n"


def write(path: str | Path, suites: list[SuiteInput]) -> Path:
    """Write the KTAP text through the shared output writer (in place for a device or FIFO)."""
    return write_text(path, render(suites), "KTAP output")
