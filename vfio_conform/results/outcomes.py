"""How a suite or fixture says a test was not run, and why: typed skips the plugin classifies.

`not_supported(reason)`, `gated(reason, hazard)` and `infra_error(reason)` raise a pytest skip whose
type carries the outcome; the plugin reads the type, never the text. A plain `pytest.skip` stays a
`skipped` (never a pass). `skip_mark(...)` is the collection-time form (a marker the plugin raises
in setup).
"""
from __future__ import annotations

import pytest

from .model import Outcome

#: Marker carrying a typed skip decided at collection time: vc_skip(outcome_value, reason, hazard).
SKIP_MARK = "vc_skip"


class OutcomeSkip(pytest.skip.Exception):
    """A skip that knows its outcome (NOT_SUPPORTED, GATED or INFRA_ERROR)."""

    def __init__(self, outcome: Outcome, reason: str, hazard: str = "", _use_item_location: bool = False):
        # The text shown to users starts with the outcome; classification uses `self.outcome`.
        super().__init__(f"{outcome.value}: {reason}", _use_item_location=_use_item_location)
        self.outcome = outcome
        self.reason = reason
        self.hazard = hazard


# Shown like pytest's own skip ("Skipped: <message>"), which pytest's summaries strip.
OutcomeSkip.__module__ = pytest.skip.Exception.__module__
OutcomeSkip.__name__ = OutcomeSkip.__qualname__ = pytest.skip.Exception.__name__


def not_supported(reason: str):
    """The device or profile lacks what the test needs."""
    __tracebackhide__ = True     # pytest reports the caller's line
    raise OutcomeSkip(Outcome.NOT_SUPPORTED, reason)


def gated(reason: str, hazard: str = ""):
    """A hazard (hang, oops) on this kernel: the test is not run."""
    __tracebackhide__ = True     # pytest reports the caller's line
    raise OutcomeSkip(Outcome.GATED, reason, hazard)


def infra_error(reason: str):
    """The harness, host or lab cannot run the test (never blamed on the device)."""
    __tracebackhide__ = True     # pytest reports the caller's line
    raise OutcomeSkip(Outcome.INFRA_ERROR, reason)


def skip_mark(outcome: Outcome, reason: str, hazard: str = ""):
    """A mark for `item.add_marker`: the plugin raises the typed skip when the test sets up."""
    return getattr(pytest.mark, SKIP_MARK)(outcome.value, reason, hazard)


def raise_marked(item) -> None:
    """Raise the typed skip a `skip_mark` put on `item` (nothing when it has none)."""
    __tracebackhide__ = True     # pytest reports the caller's line
    mark = item.get_closest_marker(SKIP_MARK)
    if mark is not None:
        outcome, reason, hazard = mark.args
        raise OutcomeSkip(Outcome(outcome), reason, hazard, _use_item_location=True)


def skip_outcome(exc) -> Outcome:
    """The outcome of a skip exception: its type's, or SKIPPED for a plain skip."""
    return exc.outcome if isinstance(exc, OutcomeSkip) else Outcome.SKIPPED
