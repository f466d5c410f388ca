"""Fixtures for suites that run on either protocol: the profile's devices, ready and idle."""
import pytest

from vfio_conform.migration_v1 import RUNNING, V1Migration, find_region
from vfio_conform.outcomes import infra_error


def ready(pool, profile, index: int):
    """v2: RUNNING with no session (the pool's rule); v1: reset, migration region back at 001."""
    if profile.protocol == "v2":
        return pool.make_running(profile, index)
    device = pool.get(profile, index)
    device.try_reset()
    info = find_region(device)
    if info is not None and V1Migration(device, info).state() != RUNNING:
        infra_error(f"{device.name}: v1 device_state is not RUNNING after reset")
    return device


@pytest.fixture
def any_device(device_pool, profile):
    """The profile's first device, idle, whatever its migration protocol."""
    dev = ready(device_pool, profile, 0)
    yield dev
    dev.try_reset() if profile.protocol == "v1" else dev.to_safe_state()


@pytest.fixture
def any_peer(device_pool, profile):
    """The profile's second device, idle, whatever its migration protocol."""
    dev = ready(device_pool, profile, 1)
    yield dev
    dev.try_reset() if profile.protocol == "v1" else dev.to_safe_state()
