"""Exit codes of `vfio-conform run` (and `lab run`): what a gate can rely on."""
from __future__ import annotations

import enum
from typing import Iterable

from .verdicts import CONFORMANT_OUTCOMES  # noqa: F401  (the words are defined in verdicts.py)


class Exit(enum.IntEnum):
    CONFORMANT = 0      # every verdict is pass, known-issue, not-supported or gated
    NONCONFORMANT = 1   # at least one spec violation (fail)
    USAGE = 2           # bad option, profile, device or store: nothing was run
    INCOMPLETE = 3      # infrastructure error, or a run that did not finish



#: When several runs (lab boots) end differently: a usage error first, then a violation, then
#: an incomplete run. A violation found is a fact even if the run did not finish.
_PRECEDENCE = (Exit.USAGE, Exit.NONCONFORMANT, Exit.INCOMPLETE, Exit.CONFORMANT)


def verdict(outcomes: Iterable[str], finished: bool) -> Exit:
    """The exit code of runs with these recorded outcomes; `finished`: every run ended normally."""
    seen = set(outcomes)
    if "fail" in seen:
        return Exit.NONCONFORMANT
    if not finished or seen - CONFORMANT_OUTCOMES:
        return Exit.INCOMPLETE
    return Exit.CONFORMANT


def combine(codes: Iterable[int]) -> Exit:
    """One exit code for several (see _PRECEDENCE); anything unknown counts as INCOMPLETE."""
    have = {Exit(c) if c in Exit._value2member_map_ else Exit.INCOMPLETE for c in codes}
    return next((c for c in _PRECEDENCE if c in have), Exit.CONFORMANT)


def from_pytest(code: int) -> Exit:
    """Map a pytest exit code the plugin did not already map (it maps every session it runs)."""
    return {0: Exit.CONFORMANT, 1: Exit.NONCONFORMANT, 4: Exit.USAGE}.get(int(code), Exit.INCOMPLETE)
