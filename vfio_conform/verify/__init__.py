"""Verification hooks: prove a destination holds the source's device state (profile key `verify`).

Hooks are members of the `vfio_conform.verify` extension group (vfio_conform/base/extensions.py): the
built-in `none`, `sim-regions`, `mtty-uart` and `libvfio-user-sample`, plus any package declaring an entry point there. A
member is a Verifier subclass (or a factory returning a Verifier); `hook_for` makes a fresh one.
"""
from __future__ import annotations

from ..base.extensions import VERIFY
from .base import NoVerify, Verifier


def hook_for(profile) -> Verifier:
    """A fresh instance of the profile's hook (`none` gives NoVerify, whose `available` is False)."""
    hook = VERIFY.load(getattr(profile, "verify", "none") or "none")()
    if not isinstance(hook, Verifier):
        raise TypeError(f"verify hook {profile.verify!r} made {hook!r}, not a Verifier")
    return hook


class WithVendorHooks(Verifier):
    """The profile's hook, then every vendor plugin's `pytest_vc_verify_state` (plugin/hookspecs.py).

    Available when the profile's hook is: only it writes the tagged state the vendor check looks at.
    """

    def __init__(self, inner: Verifier, profile, pluginhook):
        self.inner, self.profile, self.pluginhook = inner, profile, pluginhook
        self.name = inner.name
        self.header_cuts, self.header_flips = inner.header_cuts, inner.header_flips
        self.available = inner.available

    def write(self, device, tag: int) -> None:
        self.inner.write(device, tag)

    def check(self, device, tag: int, source=None) -> list[str]:
        problems = list(self.inner.check(device, tag))
        for found in self.pluginhook.pytest_vc_verify_state(source=source, destination=device,
                                                     profile=self.profile, tag=tag):
            problems += list(found or ())
        return problems

    def cuts(self, length: int) -> list[int]:
        return self.inner.cuts(length)

    def flips(self, length: int) -> list[int]:
        return self.inner.flips(length)

    def record_offsets(self, read, length: int, limit: int = 1 << 16) -> list[int]:
        return self.inner.record_offsets(read, length, limit)


def verifier_for(profile, pluginhook=None) -> Verifier:
    """The profile's hook combined with vendor plugins' pytest_vc_verify_state (pytest's `config.hook`)."""
    inner = hook_for(profile)
    return inner if pluginhook is None else WithVendorHooks(inner, profile, pluginhook)


def hook_names() -> list[str]:
    return VERIFY.names()


__all__ = ["Verifier", "NoVerify", "WithVendorHooks", "hook_for", "hook_names", "verifier_for"]
