"""Compare two sets of runs per profile: new failures, fixes, changes, appeared/disappeared tests."""
from __future__ import annotations

import dataclasses

from ..results.environment import changes as env_changes, of_run
from ..results.keys import strip_profile
from .outcomes import REFUSED, STALE_WAIVER, shown
from .runs import RunData
from .outcome_counts import latest_rows

_BAD = ("fail", "infra-error", "known-issue")
#: Outcomes that are a verdict on the device; an infra-error or a plain skip is none.
JUDGED = ("pass", "fail", "known-issue", "not-supported", "gated", STALE_WAIVER, REFUSED)
NO_VERDICT = ("infra-error", "skipped")
#: Of several rows of one test (a worker crash, then its re-run), the one that decides: the most
#: severe, so a crash stays visible to the gate however the re-run ended.
_SEVERITY = ("fail", "infra-error", "known-issue", "gated", "not-supported", "skipped", "pass")


@dataclasses.dataclass
class Change:
    """One test whose displayed outcome differs (None: absent on that side)."""

    key: str
    test_id: str
    old: str | None
    new: str | None
    message: str = ""
    rule: str = ""


@dataclasses.dataclass
class ProfileDiff:
    profile: str
    old: dict | None            # runs row (None: profile only in NEW)
    new: dict | None            # runs row (None: profile only in OLD)
    new_failures: list[Change] = dataclasses.field(default_factory=list)
    new_infra_errors: list[Change] = dataclasses.field(default_factory=list)
    fixed: list[Change] = dataclasses.field(default_factory=list)
    changed: list[Change] = dataclasses.field(default_factory=list)
    appeared: list[Change] = dataclasses.field(default_factory=list)
    disappeared: list[Change] = dataclasses.field(default_factory=list)
    stale_waivers: list[Change] = dataclasses.field(default_factory=list)
    unchanged: int = 0
    environment: list[str] = dataclasses.field(default_factory=list)   # 'name: old -> new'
    #: NEW is its host's first run of the profile (`diff prev`): nothing to compare it with, so only
    #: an unfinished NEW fails the gate; its failures are the baseline, not regressions.
    baseline: bool = False

    @property
    def regression(self) -> bool:
        """A test fails in NEW that did not fail in OLD (including tests new in NEW)."""
        return bool(self.new_failures)

    @property
    def new_status(self) -> str:
        """NEW's run status ('absent' when the profile is only in OLD)."""
        return (self.new or {}).get("status") or "absent"

    @property
    def lost_verdicts(self) -> list[Change]:
        """Tests OLD judged (pass, fail, not-supported, ...) that have no verdict in NEW
        (infra-error, skipped): e.g. a dead device makes every test an infra-error."""
        return [c for c in (*self.new_infra_errors, *self.changed)
                if c.old in JUDGED and c.new in NO_VERDICT]

    @property
    def unfinished(self) -> bool:
        """NEW did not finish (killed, crashed, empty, ...): its verdicts cannot be trusted."""
        return self.new is not None and self.new_status != "finished"

    def problems(self, allow_missing: bool = False, allow_no_verdict: bool = False) -> list[str]:
        """Why this profile's diff fails a gate (empty: it passes)."""
        out = []
        if self.baseline:
            return [f"baseline run #{self.new['id']} is {self.new_status}"] if self.unfinished else []
        lost = self.lost_verdicts
        if lost and not allow_no_verdict:
            out.append(f"{len(lost)} test(s) judged in the old run have no verdict in the new one "
                       f"({', '.join(sorted({c.new for c in lost}))})")
        if self.regression:
            n = len(self.new_failures)
            out.append(f"{n} new failure{'s' if n != 1 else ''}")
        if self.unfinished:
            reason = (self.new or {}).get("reason")
            out.append(f"new run #{self.new['id']} is {self.new_status}" + (f" ({reason})" if reason else ""))
        if self.new is None and not allow_missing:
            out.append("no new run of this profile")
        elif self.disappeared and not allow_missing:
            out.append(f"{len(self.disappeared)} test(s) of the old run missing from the new one")
        return out


#: Displayed outcomes that are the same verdict for a diff (a pass, however it is shaded).
_PASS = ("pass", STALE_WAIVER, REFUSED)


def test_key(row: dict, profile: str) -> str:
    """The row's test id without its profile, so runs of renamed/copied profiles line up: the key
    the run recorded, or (rows of older stores) the id with the run's profile name removed."""
    return row.get("test_key") or strip_profile(row["test_id"], profile)


def diff_run(old: RunData | None, new: RunData | None) -> ProfileDiff:
    """Diff two runs of one profile (either may be None when the profile is on one side only)."""
    d = ProfileDiff(new.profile if new else old.profile, old.meta if old else None,
                    new.meta if new else None)
    d.environment = environment_changes(d.old, d.new)
    before = _keyed(old)
    after = _keyed(new)
    for key, row in after.items():
        was = before.get(key)
        o, n = (shown(was) if was else None), shown(row)
        ch = Change(key, row["test_id"], o, n, row.get("message") or "", row.get("rule") or "")
        if n == STALE_WAIVER:
            d.stale_waivers.append(ch)
        if was is None:
            d.appeared.append(ch)
        if o == n or (o in _PASS and n in _PASS):
            d.unchanged += 1
        elif n == "fail":
            d.new_failures.append(ch)
        elif n == "infra-error":
            d.new_infra_errors.append(ch)
        elif o in _BAD and n in _PASS:
            d.fixed.append(ch)
        elif was is not None:
            d.changed.append(ch)
    for key, row in before.items():
        if key not in after:
            d.disappeared.append(Change(key, row["test_id"], shown(row), None,
                                        row.get("message") or "", row.get("rule") or ""))
    return d


def environment_changes(old_run: dict | None, new_run: dict | None) -> list[str]:
    """What changed in the environment the two runs recorded (kernel, driver, firmware, ...)."""
    return env_changes(of_run(old_run), of_run(new_run))


def diff_runs(old: list[RunData], new: list[RunData]) -> list[ProfileDiff]:
    """Pair runs by profile (a single run on each side is paired whatever the profiles' names)."""
    if len(old) == 1 and len(new) == 1:
        return [diff_run(old[0], new[0])]
    olds = {r.profile: r for r in old}
    news = {r.profile: r for r in new}
    names = list(dict.fromkeys([*news, *olds]))
    return [diff_run(olds.get(p), news.get(p)) for p in names]


def _keyed(run: RunData | None) -> dict[str, dict]:
    if run is None:
        return {}
    out: dict[str, dict] = {}
    for row in latest_rows(run.rows):
        out[test_key(row, run.profile)] = row
    for row in run.rows:            # a more severe earlier row of the same test decides
        key = test_key(row, run.profile)
        if _rank(row) < _rank(out[key]):
            out[key] = row
    return out


def _rank(row: dict) -> int:
    outcome = row.get("outcome")
    return _SEVERITY.index(outcome) if outcome in _SEVERITY else len(_SEVERITY)
