"""Fixtures: a session pool of opened devices per profile, and per-test devices in RUNNING."""
from __future__ import annotations

import pytest

from ..backends.open import open_device
from ..device import Device
from ..errors import errno_name
from ..uapi.enums import MigState
from . import classify
from .context import CONTEXT_KEY


class DevicePool:
    """Opens each (profile, device id) once per session; a device that cannot be made safe is broken."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.devices: dict[tuple[str, int], Device] = {}
        self.broken: dict[tuple[str, int], str] = {}

    def get(self, profile, index: int) -> Device:
        key = (profile.name, index)
        if key in self.broken:
            pytest.skip(f"{classify.BROKEN}{self.broken[key]}")
        ids = self.ctx.targets[profile.name].device_ids
        if index >= len(ids):
            pytest.skip(f"{classify.NOT_SUPPORTED}test needs {index + 1} devices; profile "
                        f"{profile.name} has {len(ids)} (pass --device twice)")
        if key not in self.devices:
            self.devices[key] = open_device(profile, ids[index])
        return self.devices[key]

    def make_running(self, profile, index: int) -> Device:
        """A device in RUNNING with no session: reset (or SET RUNNING); else mark it broken."""
        device = self.get(profile, index)
        how = device.to_safe_state()
        state = device.get_state_raw()
        if state[0] or state[1] != MigState.RUNNING:
            reason = (f"device {device.name} could not be returned to RUNNING ({how}; GET says "
                      f"{MigState.label(state[1])}, {errno_name(state[0])}): remaining tests skipped")
            self.broken[(profile.name, index)] = reason
            pytest.fail(reason, pytrace=False)
        return device

    def close(self) -> None:
        for device in self.devices.values():
            device.close(safe=True)
        self.devices.clear()


@pytest.fixture(scope="session")
def vc_context(request):
    ctx = request.config.stash.get(CONTEXT_KEY, None)
    if ctx is None:
        pytest.skip("no --vc-profile given")
    return ctx


@pytest.fixture(scope="session")
def device_pool(vc_context):
    pool = DevicePool(vc_context)
    yield pool
    pool.close()


@pytest.fixture
def device(device_pool, profile) -> Device:
    """The profile's first device, in RUNNING with no session; returned to a safe state afterwards."""
    dev = device_pool.make_running(profile, 0)
    yield dev
    dev.to_safe_state()


@pytest.fixture
def peer_device(device_pool, profile) -> Device:
    """The profile's second device (migration destination), in RUNNING."""
    dev = device_pool.make_running(profile, 1)
    yield dev
    dev.to_safe_state()
