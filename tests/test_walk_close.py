"""The random walk models close() of a data_fd apart from the stream written to its session.

QEMU's destination closes the resuming data_fd in its load cleanup, possibly while the device is
still in RESUMING (a paused destination), and leaves RESUMING later. A device that received the
whole stream must not be blamed for accepting RESUMING -> STOP after the fd was closed; one that
received only part of it must still refuse.
"""
import dataclasses

import pytest

from vfio_conform.backends.registry import open_device
from vfio_conform.suitelib.depth.walk import DeviceWalk, WalkContext
from vfio_conform.base.errors import SpecViolation
from vfio_conform.model.plan import reach
from vfio_conform.profile import find_profile
from vfio_conform.uapi.enums import MigState

S = MigState


def _walk(base: str, faults=()) -> DeviceWalk:
    profile = find_profile(base)
    if faults:
        profile = dataclasses.replace(profile, backend_config={"sim": dict(profile.backend_config["sim"], faults=list(faults))})
    device = open_device(profile, "sim0")
    stream_fd = device.walk(reach(S.STOP_COPY, profile.flags, device.get_state()))[-1]
    stream = b"".join(stream_fd.chunks())
    stream_fd.close()
    device.reset()
    return DeviceWalk(WalkContext(device, profile, stream, "6.12.0-test"))


def _resume_then_close(walk: DeviceWalk, size: int) -> None:
    """SET RESUMING, one write of `size` stream bytes, close the resuming fd (state unchanged)."""
    walk.set_state(int(S.RESUMING))
    assert walk.state is S.RESUMING
    index = len(walk.fds) - 1
    walk.write(index, size)
    walk.close(index)
    assert walk.state is S.RESUMING


@pytest.mark.parametrize("base", ["sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy"])
def test_complete_stream_then_close_then_stop_is_not_a_failure(base):
    walk = _walk(base)
    try:
        _resume_then_close(walk, 1 << 20)
        walk.set_state(int(S.STOP))          # raised resume.incomplete-stream-fails before the fix
        assert walk.state is S.STOP
        walk.observable_state()
    finally:
        walk.teardown()


def test_partial_stream_then_close_still_must_fail():
    """The rule still holds for the bytes written: a device that loads a partial stream is caught."""
    walk = _walk("sim-p2p-precopy", faults=[{"name": "accept_incomplete_resume"}])
    try:
        _resume_then_close(walk, 13)
        with pytest.raises(SpecViolation) as exc:
            walk.set_state(int(S.STOP))
        assert exc.value.rule_id == "resume.incomplete-stream-fails"
    finally:
        walk.teardown()


def test_partial_stream_then_close_refused_by_clean_device():
    walk = _walk("sim-p2p-precopy")
    try:
        _resume_then_close(walk, 13)
        walk.set_state(int(S.STOP))           # the device refuses: the walk stays in RESUMING
        assert walk.state is S.RESUMING
        walk.observable_state()
    finally:
        walk.teardown()


def test_device_that_drops_data_on_close_is_caught_by_the_walk():
    """The other side of the same sequence: a device that discards the written stream when its fd
    is closed fails QEMU's paused destination, and the walk names the rule."""
    walk = _walk("sim-p2p-precopy", faults=[{"name": "resume_close_drops_data"}])
    try:
        _resume_then_close(walk, 1 << 20)
        with pytest.raises(SpecViolation) as exc:
            walk.set_state(int(S.STOP))
        assert exc.value.rule_id == "resume.close-keeps-data"
    finally:
        walk.teardown()
