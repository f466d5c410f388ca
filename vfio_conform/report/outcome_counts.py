"""Per-suite and per-run outcome counts, and the failure/waiver lists a report shows."""
from __future__ import annotations

from collections import Counter

from .outcomes import STALE_WAIVER, shown


def suite_of(nodeid: str) -> str:
    """'fsm' for 'suites/fsm/test_arcs.py::test_arc[...]' (else the file's directory or stem)."""
    parts = nodeid.split("::", 1)[0].split("/")
    if "suites" in parts[:-1]:
        return parts[parts.index("suites") + 1] if parts.index("suites") + 2 < len(parts) else parts[-1]
    return parts[-2] if len(parts) > 1 else parts[-1].removesuffix(".py")


def latest_rows(rows: list[dict]) -> list[dict]:
    """One row per test id (the last recorded), in first-seen order."""
    by_id: dict[str, dict] = {}
    for row in rows:
        by_id[row["test_id"]] = row
    return list(by_id.values())


def counts(rows: list[dict]) -> Counter:
    return Counter(shown(r) for r in rows)


def by_suite(rows: list[dict]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for row in rows:
        out.setdefault(suite_of(row["nodeid"]), Counter())[shown(row)] += 1
    return out


def failures(rows: list[dict]) -> list[dict]:
    """Product failures then infrastructure errors."""
    return [r for r in rows if r["outcome"] == "fail"] + [r for r in rows if r["outcome"] == "infra-error"]


def known_issues(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["outcome"] == "known-issue"]


def stale_waivers(rows: list[dict]) -> list[dict]:
    """Waived tests that passed: their profile waiver can be removed."""
    return [r for r in rows if shown(r) == STALE_WAIVER]
