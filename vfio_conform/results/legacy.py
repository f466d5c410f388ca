"""Rows of stores written before results carried the record's fields: what those fields were.

Read-only compatibility: a row whose `arc_from` / `should` is NULL was stored by an older harness,
which kept the arc only in the test id and a should finding only in the message text. New rows
always carry the fields (an empty string when there is none), so nothing new is parsed back.
"""
from __future__ import annotations

import re

_ARC = re.compile(r"\[(?:[^\]:]*:)?([A-Z_0-9]+(?:\(\d+\))?)->([A-Z_0-9]+(?:\(\d+\))?)\]$")
_SHOULD = re.compile(r"^should not met: (.*)")
_RULE = re.compile(r"\[([a-z0-9]+\.[a-z0-9.-]+)\]")


def fill(row: dict) -> dict:
    """Give an old row the fields a new one has (in place; new rows are left as they are)."""
    if row.get("arc_from") is None:
        m = _ARC.search(row.get("test_id") or "")
        row["arc_from"], row["arc_to"] = (m.group(1), m.group(2)) if m else ("", "")
    if row.get("should") is None:
        m = _SHOULD.match(row.get("message") or "") if row.get("outcome") == "pass" else None
        row["should"] = " ".join(_RULE.findall(m.group(1))) if m else ""
    if row.get("rules") is None:
        row["rules"] = row.get("rule") or ""
    for name in ("devices", "waiver_reason", "hazard", "test_key", "arc_expect"):
        if row.get(name) is None:
            row[name] = ""
    row.setdefault("waiver_index", None)
    return row
