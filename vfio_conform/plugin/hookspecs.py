"""Hooks a vendor plugin may implement (registered with `pytest_addhooks`, as pytest-xdist does).

A vendor plugin is any pytest plugin (a `pytest11` entry point, a conftest.py, or `-p module`)
defining functions with these names (the `pytest_` prefix makes pytest pick them up without a
decorator, as with pytest-xdist's `pytest_xdist_*`); pytest calls every implementation. Arguments are
passed by keyword, so an implementation may accept only the ones it needs::

    def pytest_vc_device_opened(device, profile):
        device.ioctl(...)           # e.g. enable a vendor debug feature

Devices are `vfio_conform.device.Device` objects; profiles `vfio_conform.profile.Profile`.
"""
from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_vc_device_opened(device, profile, role: str) -> None:
    """`device` was just opened for `profile` as `role` ('source', 'destination', 'device2', ...).

    Called once per open (a device reopened during recovery is opened again); the device is in
    whatever state the backend left it, before the harness returns it to RUNNING.
    """


@pytest.hookspec
def pytest_vc_device_closing(device, profile, role: str) -> None:
    """`device` is about to be closed (end of session, or a reopen during recovery)."""


@pytest.hookspec
def pytest_vc_verify_state(source, destination, profile, tag: int) -> list[str] | None:
    """Check that `destination` holds the state `tag` was written as (by the profile's verify hook).

    Called by round-trip verification after the profile's own verify hook. `source` is the device
    the state came from, or None when not known. Return a list of problems (empty or None: the state
    matches); each problem fails the test under the round trip's rule.
    """
