"""Root causes: failures that are one defect of one device, counted once beside the tests.

A device that cannot be brought back to RUNNING after a test (e.g. a server that aborts on
STOP_COPY -> RUNNING) shows in the teardown of every test that leaves it in that state. The pool
reports such a recovery finding once per device and state path (the first test whose teardown hits
it fails); the teardowns of later tests that hit it record the test's own outcome with a note
(`SPOILED`) naming the root cause. `key` gives the same key to a failure and to such notes, so
outputs count root causes beside tests (`count`).
"""
from __future__ import annotations

import dataclasses
import re

#: The message prefix of a test whose teardown hit an already reported root cause.
SPOILED = "teardown hit an already reported root cause: "

_EXC = re.compile(r"^(?:[\w.]+\.)?\w+(?:Error|Violation|Exception): ")
_HEAD = re.compile(r"^\[(?P<rule>[^\]]+)\](?: on (?P<device>\S+?))?: (?P<what>.*)$")
#: Where a finding's message stops naming the defect and starts telling the recovery or details.
_TAIL = re.compile(r"; recovered by |; device retired|: device retired| \(vfio-user |\n  rule: ")
_PATH = re.compile(r" \(path [^()]*(?:\([^()]*\)[^()]*)*\)")


def key(rule: str, message: str) -> str:
    """The root cause of a failure of `rule` with `message` (its first line, less the recovery
    story, details and numbers): 'rule | device | what the device did'."""
    line = (message or "").removeprefix(SPOILED).splitlines()[0] if message else ""
    line = _EXC.sub("", line, count=1)
    m = _HEAD.match(line)
    device, what = (m["device"] or "", m["what"]) if m else ("", line)
    what = _TAIL.split(_PATH.sub("", what), 1)[0]
    what = re.sub(r"\b0x[0-9a-fA-F]+\b|\b\d+\b", "N", what).strip()
    return f"{rule} | {device} | {what}"


@dataclasses.dataclass(frozen=True)
class RootCause:
    key: str
    rule: str
    failed: int       # tests that failed with it
    spoiled: int      # later tests whose teardown hit it (not failed again)


def count(rows) -> list[RootCause]:
    """The root causes of a run's rows (dicts or TestRecords with outcome, rule, message), most
    tests first."""
    found: dict[str, list] = {}
    for row in rows:
        get = row.get if isinstance(row, dict) else lambda name, r=row: getattr(r, name, "")
        outcome = str(getattr(get("outcome"), "value", get("outcome")))
        message, rule = get("message") or "", get("rule") or ""
        if outcome == "fail":
            entry = found.setdefault(key(rule, message), [rule, 0, 0])
            entry[1] += 1
        elif message.startswith(SPOILED):
            k = message[len(SPOILED):].split(" (first ", 1)[0]
            entry = found.setdefault(k, [k.split(" | ", 1)[0], 0, 0])
            entry[2] += 1
    out = [RootCause(k, r, f, s) for k, (r, f, s) in found.items() if f]
    return sorted(out, key=lambda c: (-(c.failed + c.spoiled), c.key))
