"""How each recorded outcome is shown: label, short cell glyph, CSS colour, severity order."""
from __future__ import annotations

import dataclasses

#: Pseudo-outcomes the report derives: a waived test that passed, and a matrix cell with no row.
STALE_WAIVER = "waiver-stale"
NOT_RUN = "not-run"
#: A passing test whose record names `should` rules the device does not follow.
SHOULD_UNMET = "should-unmet"


@dataclasses.dataclass(frozen=True)
class Style:
    label: str
    glyph: str
    color: str


STYLES: dict[str, Style] = {
    "pass": Style("pass", "✓", "#2e9d4f"),
    "fail": Style("fail", "✗", "#d3302f"),
    "not-supported": Style("not supported", "NS", "#9aa5b1"),
    "known-issue": Style("known issue", "KI", "#e8a317"),
    "infra-error": Style("infra error", "IE", "#7b3fbf"),
    "gated": Style("hazard-skipped", "HZ", "#3a6fd8"),
    "skipped": Style("skipped", "–", "#c8ced6"),
    STALE_WAIVER: Style("pass, waiver can be removed", "✓!", "#7cc96f"),
    SHOULD_UNMET: Style("pass, should not met", "✓?", "#b8c43a"),
    NOT_RUN: Style("not run", "", "#f1f3f5"),
}
#: Display order (most severe first) for legends and summaries.
ORDER = ["fail", "infra-error", "known-issue", STALE_WAIVER, SHOULD_UNMET, "pass", "not-supported", "gated",
         "skipped", NOT_RUN]


def shown(row: dict | None) -> str:
    """The outcome key a row is displayed as (a passing row with a waiver link is a stale waiver)."""
    if row is None:
        return NOT_RUN
    if row["outcome"] == "pass" and row.get("link"):
        return STALE_WAIVER
    if row["outcome"] == "pass" and row.get("should"):
        return SHOULD_UNMET
    return row["outcome"] if row["outcome"] in STYLES else "skipped"


def style(key: str) -> Style:
    return STYLES.get(key, STYLES["skipped"])
