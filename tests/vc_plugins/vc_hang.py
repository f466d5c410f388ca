"""Test-only pytest plugin: makes the sim hang like a wedged driver (loaded with -p vc_hang).

VC_HANG_TEST: substring of the test id whose call phase hangs in its first SET MIG_DEVICE_STATE.
VC_HANG_RESET=1: after that, VFIO_DEVICE_RESET of that device hangs too (it cannot be recovered).
VC_HANG_UNINTERRUPTIBLE=1: the hang is like an ioctl in D state: SIGALRM, SIGTERM and SIGINT are
blocked for its duration (VC_HANG_SECONDS, default 3600), so no signal handler runs until it ends.
"""
import os
import signal
import time

import pytest

from vfio_conform.backends.sim.transport import SimTransport
from vfio_conform.uapi.enums import FeatureOp
from vfio_conform.uapi.ioctl import number

_FEATURE = number("VFIO_DEVICE_FEATURE")
_RESET = number("VFIO_DEVICE_RESET")
_state = {"call": None, "hung": False, "device": None}
_orig = SimTransport.ioctl


def _ioctl(self, fd, request, arg=None):
    target = os.environ.get("VC_HANG_TEST", "")
    if (request == _FEATURE and _state["call"] and target in _state["call"] and not _state["hung"]
            and isinstance(arg, bytearray) and int.from_bytes(arg[4:8], "little") & FeatureOp.SET):
        _state["hung"], _state["device"] = True, self
        _sleep(float(os.environ.get("VC_HANG_SECONDS", "3600")))
    if request == _RESET and _state["device"] is self and os.environ.get("VC_HANG_RESET") == "1":
        time.sleep(3600)
    return _orig(self, fd, request, arg)


def _sleep(seconds: float) -> None:
    if os.environ.get("VC_HANG_UNINTERRUPTIBLE") != "1":
        time.sleep(seconds)
        return
    blocked = {signal.SIGALRM, signal.SIGTERM, signal.SIGINT}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        time.sleep(seconds)          # no signal is delivered to this thread meanwhile
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


SimTransport.ioctl = _ioctl


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    _state["call"] = item.name
    try:
        return (yield)
    finally:
        _state["call"] = None
