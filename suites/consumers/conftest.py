"""Fixtures for the consumer scenarios: the profile's verify hook and an idle device of any protocol."""
import pytest

from vfio_conform.verify import hook_for


@pytest.fixture
def hook(profile):
    """The profile's verify hook (a no-op hook when it has none: then only acceptance is checked)."""
    return hook_for(profile)


@pytest.fixture
def idle_device(device_pool, profile):
    """The profile's first device: RUNNING with no session for v2; as found otherwise (never reset)."""
    if profile.protocol == "v2":
        dev = device_pool.make_running(profile, 0)
        yield dev
        dev.to_safe_state()
    else:
        yield device_pool.get(profile, 0)
