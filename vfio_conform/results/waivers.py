"""How each profile waiver fared in a run: how many tests it named and how many failures it waived.

Kept in its own table (`waivers`, created by the first run that records one), so a report can list
the waivers that waived nothing: a fixed bug, a renamed test or a pattern that never matched.
"""
from __future__ import annotations

import dataclasses

_DDL = ("CREATE TABLE IF NOT EXISTS waivers (run_id BIGINT NOT NULL, idx INTEGER NOT NULL, "
        "test TEXT NOT NULL, rule TEXT NOT NULL, link TEXT NOT NULL, reason TEXT NOT NULL, "
        "matched INTEGER NOT NULL, waived INTEGER NOT NULL)")
_COLUMNS = ("run_id", "idx", "test", "rule", "link", "reason", "matched", "waived")


@dataclasses.dataclass(frozen=True)
class WaiverUse:
    """One known_issues entry of a run's profile and what it did in that run.

    Args:
        index: position in the profile's known_issues list.
        test, rule, link, reason: the waiver as written in the profile.
        matched: tests run whose id the waiver's `test` pattern matches.
        waived: failures of `rule` in those tests it turned into known issues.
    """

    index: int
    test: str
    rule: str
    link: str
    reason: str
    matched: int = 0
    waived: int = 0

    @property
    def unused(self) -> bool:
        return self.waived == 0


def record_waivers(store, run_id: int, uses: list[WaiverUse]) -> None:
    """Store the waivers of one run (a run whose profile has none stores nothing)."""
    if not uses:
        return
    store._execute(_DDL)
    marks = ", ".join("?" * len(_COLUMNS))
    for use in uses:
        store._execute(f"INSERT INTO waivers ({', '.join(_COLUMNS)}) VALUES ({marks})",
                       (run_id, use.index, use.test, use.rule, use.link, use.reason, use.matched,
                        use.waived))


def load_waivers(store, run_id: int) -> list[WaiverUse]:
    """The waivers stored for a run, in profile order (none for a store without the table)."""
    if not store.has_table("waivers"):
        return []
    rows = store._rows("SELECT idx, test, rule, link, reason, matched, waived FROM waivers "
                       "WHERE run_id = ? ORDER BY idx", (run_id,))
    return [WaiverUse(r["idx"], r["test"], r["rule"], r["link"], r["reason"], int(r["matched"]),
                      int(r["waived"])) for r in rows]
