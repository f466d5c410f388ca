"""Read a test item's parametrized values (the profile, the arc) in one place."""
from __future__ import annotations

from ..results.keys import key_from_parts, strip_profile


def item_param(item, name: str):
    """A parametrized value of `item`; None when absent or the NOTSET of an empty parameter set."""
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get(name) if callspec else None
    return None if type(value).__name__ == "NotSetType" else value


def item_key(item, profile_name: str) -> str:
    """The item's test id without its profile (results.keys), from the id parts pytest joined."""
    parts = getattr(getattr(item, "callspec", None), "_idlist", None)
    if parts is None:           # pytest keeps the parts privately: fall back to the joined id
        return strip_profile(item.name, profile_name)
    return key_from_parts(getattr(item, "originalname", item.name), list(parts), profile_name)
