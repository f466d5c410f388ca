"""A profile's waivers (known_issues) checked against the suites: each must name a test function
the suites define (read from the source, nothing imported)."""
from __future__ import annotations

import functools
from pathlib import Path

from ..base.constants import SUITES_DIR
from ..profile.schema import KnownIssue, Profile
from .sourcescan import facts_of, shared_cache


@functools.lru_cache(maxsize=None)
def suite_functions(suites_dir: Path = SUITES_DIR) -> frozenset[str]:
    """Names of every test function defined in the suites (read from the source, nothing imported)."""
    names = set()
    for path in sorted(suites_dir.rglob("test_*.py")):
        names.update(facts_of(path).tests)       # parsed once per content (sourcescan.py)
    shared_cache().save()
    return frozenset(names)


def check_waivers(profile: Profile, suites_dir: Path = SUITES_DIR) -> None:
    """ConfigError (file:line: known_issues.N.test) for a waiver naming no test function of the suites."""
    known = suite_functions(suites_dir)
    for issue in profile.known_issues:
        if issue.function not in known:
            raise profile.error(f"known_issues.{issue.index}.test",
                                f"no test function {issue.function!r} in the suites",
                                f"test functions are listed by 'pytest {suites_dir} --collect-only -q'")


def waiver_message(issue: KnownIssue, violation: str) -> str:
    """What a known issue records: the violation itself, then the waiver's link and reason."""
    return f"{violation}\nknown issue, waived by known_issues[{issue.index}] ({issue.link}): {issue.reason}"
