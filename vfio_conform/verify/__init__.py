"""Verification hooks: prove a destination holds the source's device state (profile key `verify`).

Hooks are members of the `vfio_conform.verify` extension group (vfio_conform/extensions.py): the
built-in `none`, `sim-regions` and `mtty-uart`, plus any package declaring an entry point there. A
member is a Verifier subclass (or a factory returning a Verifier); `hook_for` makes a fresh one.
"""
from __future__ import annotations

from ..extensions import VERIFY
from .base import NoVerify, Verifier


def hook_for(profile) -> Verifier:
    """A fresh instance of the profile's hook (`none` gives NoVerify, whose `available` is False)."""
    hook = VERIFY.load(getattr(profile, "verify", "none") or "none")()
    if not isinstance(hook, Verifier):
        raise TypeError(f"verify hook {profile.verify!r} made {hook!r}, not a Verifier")
    return hook


def hook_names() -> list[str]:
    return VERIFY.names()


__all__ = ["Verifier", "NoVerify", "hook_for", "hook_names"]
