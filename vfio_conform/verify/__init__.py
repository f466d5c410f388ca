"""Verification hooks: prove a destination holds the source's device state (profile key `verify`)."""
from __future__ import annotations

from .base import NoVerify, Verifier


def hook_for(profile) -> Verifier:
    """The profile's hook (`none` gives NoVerify, whose `available` is False)."""
    name = getattr(profile, "verify", "none")
    if name == "sim-regions":
        from .sim_regions import SimRegions
        return SimRegions()
    if name == "mtty-uart":
        from .mtty_uart import MttyUart
        return MttyUart()
    return NoVerify()


__all__ = ["Verifier", "NoVerify", "hook_for"]
