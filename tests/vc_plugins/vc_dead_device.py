"""Test-only pytest plugin: the device is gone (loaded with -p vc_dead_device): every test of the
profile named by VC_DEAD_PROFILE fails in its setup with ENODEV, an infra-error, as a device that
fell off the bus would make it."""
import errno
import os


def pytest_runtest_setup(item):
    callspec = getattr(item, "callspec", None)
    profile = callspec.params.get("profile") if callspec else None
    if profile is not None and getattr(profile, "name", None) == os.environ.get("VC_DEAD_PROFILE"):
        raise OSError(errno.ENODEV, "the device is gone (simulated)")
