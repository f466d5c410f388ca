"""Read a test item's parametrized values (the profile, the arc) and its rule ids in one place."""
from __future__ import annotations

import pytest

from ..results.keys import key_from_parts, strip_profile
from ..uapi.enums import MigState


def item_param(item, name: str):
    """A parametrized value of `item`; None when absent or the NOTSET of an empty parameter set."""
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get(name) if callspec else None
    return None if type(value).__name__ == "NotSetType" else value


def item_arc(item) -> dict[str, str]:
    """An arc test's arc as its record's fields: arc_from and arc_to (the states as the uAPI spells
    them) and arc_expect (what the uAPI requires of the request); empty for any other test."""
    arc = item_param(item, "arc")
    if arc is None:
        return {"arc_from": "", "arc_to": "", "arc_expect": ""}
    return {"arc_from": arc.current.name, "arc_to": MigState.label(arc.target),
            "arc_expect": "accept" if arc.legal else "refuse"}


def item_key(item, profile_name: str) -> str:
    """The item's test id without its profile (results.keys), from the id parts pytest joined."""
    parts = getattr(getattr(item, "callspec", None), "_idlist", None)
    if parts is None:           # pytest keeps the parts privately: fall back to the joined id
        return strip_profile(item.name, profile_name)
    return key_from_parts(getattr(item, "originalname", item.name), list(parts), profile_name)


#: An item's rule ids, worked out once (collection, setup and every report ask for them).
_SPEC_IDS = pytest.StashKey[tuple]()


def spec_ids(item) -> list[str]:
    """Every rule id of `item`'s vc_spec marks, nearest mark first, without repeats."""
    known = item.stash.get(_SPEC_IDS, None)
    if known is None:
        ids: list[str] = []
        for mark in item.iter_markers("vc_spec"):
            for rule_id in mark.args:
                if rule_id not in ids:
                    ids.append(rule_id)
        known = item.stash[_SPEC_IDS] = tuple(ids)
    return list(known)
