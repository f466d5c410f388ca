"""Vendor hooks (vfio_conform/plugin/hookspecs.py), active only when VC_TINY_VENDOR_LOG names a file.

Each call appends one line `hook role-or-tag device profile` to that file; when VC_TINY_VENDOR_FAIL
is set, pytest_vc_verify_state reports a problem (so the round-trip tests must fail).
"""
from __future__ import annotations

import os


def _log(*words) -> None:
    path = os.environ.get("VC_TINY_VENDOR_LOG")
    if path:
        with open(path, "a") as f:
            f.write(" ".join(str(w) for w in words) + "\n")


def pytest_vc_device_opened(device, profile, role):
    _log("opened", role, device.name, profile.name)


def pytest_vc_device_closing(device, profile, role):
    _log("closing", role, device.name, profile.name)


def pytest_vc_verify_state(source, destination, profile, tag):
    _log("verify", tag, destination.name, profile.name, source.name if source is not None else "-")
    if os.environ.get("VC_TINY_VENDOR_FAIL") and os.environ.get("VC_TINY_VENDOR_LOG"):
        return [f"vendor check: {destination.name} does not hold tag {tag}"]
    return []
