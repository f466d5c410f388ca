"""Read a test item's parametrized values (the profile, the arc) in one place."""
from __future__ import annotations


def item_param(item, name: str):
    """A parametrized value of `item`; None when absent or the NOTSET of an empty parameter set."""
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get(name) if callspec else None
    return None if type(value).__name__ == "NotSetType" else value
