"""How each recorded outcome is shown: label, short cell glyph, CSS colour, severity order.

Labels are the CLI's outcome names (pass, fail, not-supported, known-issue, gated, infra-error,
skipped); the shades of pass the report derives are named "pass (...)".
"""
from __future__ import annotations

import dataclasses

#: Pseudo-outcomes the report derives: a waived test that passed, and a matrix cell with no row.
STALE_WAIVER = "waiver-stale"
NOT_RUN = "not-run"
#: A passing test whose record names `should` rules the device does not follow.
SHOULD_UNMET = "should-unmet"
#: A passing arc test of a request the uAPI forbids: the device correctly refused it.
REFUSED = "pass-refused"


@dataclasses.dataclass(frozen=True)
class Style:
    label: str
    glyph: str
    color: str


STYLES: dict[str, Style] = {
    "pass": Style("pass", "✓", "#2e9d4f"),
    "fail": Style("fail", "✗", "#d3302f"),
    REFUSED: Style("pass (correctly refused)", "⊘", "#1f7a74"),
    "not-supported": Style("not-supported", "NS", "#9aa5b1"),
    "known-issue": Style("known-issue", "KI", "#e8a317"),
    "infra-error": Style("infra-error", "IE", "#7b3fbf"),
    "gated": Style("gated", "HZ", "#3a6fd8"),
    "skipped": Style("skipped", "–", "#c8ced6"),
    STALE_WAIVER: Style("pass (waiver can be removed)", "✓!", "#7cc96f"),
    SHOULD_UNMET: Style("pass (should not met)", "✓?", "#b8c43a"),
    NOT_RUN: Style("not run", "", "#f1f3f5"),
}
#: Display order (most severe first) for legends and summaries.
ORDER = ["fail", "infra-error", "known-issue", STALE_WAIVER, SHOULD_UNMET, "pass", REFUSED, "not-supported",
         "gated", "skipped", NOT_RUN]
#: The outcomes a run records, in the CLI's order (the summary table's columns).
RECORDED = ["pass", "fail", "not-supported", "known-issue", "gated", "infra-error", "skipped"]


def shown(row: dict | None) -> str:
    """The outcome key a row is displayed as (a passing row with a waiver link is a stale waiver)."""
    if row is None:
        return NOT_RUN
    if row["outcome"] == "pass" and row.get("link"):
        return STALE_WAIVER
    if row["outcome"] == "pass" and row.get("should"):
        return SHOULD_UNMET
    if row["outcome"] == "pass" and refused(row):
        return REFUSED
    return row["outcome"] if row["outcome"] in STYLES else "skipped"


def refused(row: dict) -> bool:
    """An arc test of a request the uAPI forbids (ERROR, an out-of-range state, a state or path the
    device lacks). Rows of older stores lack `arc_expect`: only ERROR and out-of-range requests are
    known refusals there (the rest depended on the profile's flags)."""
    expect = row.get("arc_expect")
    if expect:
        return expect == "refuse"
    to = row.get("arc_to") or ""
    return to == "ERROR" or to.startswith("INVALID(")


def style(key: str) -> Style:
    return STYLES.get(key, STYLES["skipped"])
