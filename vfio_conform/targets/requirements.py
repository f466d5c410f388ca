"""What the model asks of a profile before a test runs: the arc targets a test is parametrized over,
and whether a profile has a flag or feature a test requires (`vc_requires`)."""
from __future__ import annotations

from ..uapi.enums import MIG_STATE_NR, MigFlag, MigState

#: Every state an arc test requests from each supported state: the uAPI's states, ERROR last but one,
#: and one past the last state (an out-of-range request).
ARC_TARGETS = [*[s for s in MigState if s is not MigState.ERROR], MigState.ERROR, MIG_STATE_NR]


def has_need(profile, need) -> bool:
    """The profile has `need`: a migration flag (MigFlag) or a boolean profile field by name."""
    if isinstance(need, MigFlag):
        return bool(profile.flags & need)
    return bool(getattr(profile, need))


def need_name(need) -> str:
    return getattr(need, "name", None) or str(need)
