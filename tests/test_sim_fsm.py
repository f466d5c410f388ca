"""The sim's FSM through the one Device interface matches `model.plan` for every (from, to) and flag set."""
import errno

import pytest

from vfio_conform.backends.sim import open_sim
from vfio_conform.device import Device
from vfio_conform.model.fsm import FLAG_SETS, supported_states
from vfio_conform.model.plan import plan, reach
from vfio_conform.uapi.enums import MIG_STATE_NR, MigState

TARGETS = list(range(MIG_STATE_NR + 2))      # every state plus two out-of-range values


def open_device(name: str = "sim0", **config) -> Device:
    return Device(open_sim(config, name), io_timeout=1.0)


def saved_stream(flags: int) -> bytes:
    """A complete STOP_COPY stream from a twin device with the same config."""
    with open_device("twin", flags=flags) as src:
        fd = src.set_state(MigState.STOP)
        fd = src.set_state(MigState.STOP_COPY)
        data = b"".join(fd.chunks(1 << 20))
        fd.close()
        return data


def enter(device: Device, state: MigState, stream: bytes) -> list:
    """Walk from RUNNING to `state` in single steps; a RESUMING session gets a complete stream."""
    fds = device.walk(reach(state, device.transport.device.flags))
    if state is MigState.RESUMING:
        fds[-1].write(stream)
    return fds


def cases():
    for flags in FLAG_SETS:
        for cur in supported_states(flags):
            for target in TARGETS:
                yield pytest.param(int(flags), cur, target, id=f"{int(flags)}:{cur.name}->{MigState.label(target)}")


@pytest.fixture(scope="module")
def streams():
    return {int(flags): saved_stream(int(flags)) for flags in FLAG_SETS}


@pytest.mark.parametrize("flags,cur,target", list(cases()))
def test_set_matches_plan(flags, cur, target, streams):
    expected = plan(cur, target, flags)
    with open_device(flags=flags) as device:
        fds = enter(device, cur, streams[flags])
        assert device.get_state() == cur
        result = device.try_set_state(target)
        sim = device.transport.device
        assert result.errno == expected.errno, expected.describe()
        assert result.written_state == target
        assert (result.data_fd is not None) == expected.data_fd, expected.describe()
        if result.data_fd is not None:
            assert result.data_fd.cloexec
            fds.append(result.data_fd)
        assert sim.last_path == expected.path, expected.describe()
        code, state, data_fd = device.get_state_raw()
        assert (code, state, data_fd) == (0, expected.state_after, -1)
        assert sim.fired == []
        for fd in fds:
            fd.close()


@pytest.mark.parametrize("target", TARGETS)
def test_set_from_error_matches_plan(target):
    """ERROR (reachable only by faults) refuses every SET but ERROR itself; reset leaves it."""
    with open_device(flags=7) as device:
        device.transport.device.state = MigState.ERROR
        expected = plan(MigState.ERROR, target, 7)
        assert device.try_set_state(target).errno == expected.errno
        assert device.get_state() == expected.state_after
        device.reset()
        assert device.get_state() == MigState.RUNNING


def test_blocked_arc_returns_einval_without_hanging():
    """STOP_COPY -> PRE_COPY(_P2P): the hazard arc of 6.12 kernels; the sim says EINVAL."""
    with open_device(flags=7) as device:
        fds = device.walk(reach(MigState.STOP_COPY, 7))
        for target in (MigState.PRE_COPY, MigState.PRE_COPY_P2P):
            assert plan(MigState.STOP_COPY, target, 7).hazard is not None
            result = device.try_set_state(target)
            assert (result.errno, result.data_fd) == (errno.EINVAL, None)
            assert device.get_state() == MigState.STOP_COPY
        assert fds[0].read(8)          # the session is still alive
        fds[0].close()


def test_same_state_keeps_session_and_fd():
    with open_device(flags=1) as device:
        fd = device.walk(reach(MigState.STOP_COPY, 1))[0]
        first = fd.read(100)
        result = device.try_set_state(MigState.STOP_COPY)
        assert (result.errno, result.data_fd) == (0, None)
        assert fd.read(100) != first          # same stream, continuing
        fd.close()


def test_closing_data_fd_changes_no_state():
    with open_device(flags=7) as device:
        fd = device.walk(reach(MigState.PRE_COPY, 7))[0]
        fd.close()
        assert device.get_state() == MigState.PRE_COPY
        assert device.try_set_state(MigState.STOP_COPY).ok


def test_reset_returns_running_and_ends_sessions():
    with open_device(flags=7) as device:
        fd = device.walk(reach(MigState.PRE_COPY_P2P, 7))[0]
        device.reset()
        assert device.get_state() == MigState.RUNNING
        assert fd.try_read(16)[0] == errno.ENODEV
        assert fd.try_precopy_info()[0] == errno.EINVAL     # state check comes first (mtty order)
        fd.close()


def test_reset_unsupported_is_einval():
    with open_device(reset_supported=False) as device:
        assert not device.info().flags & 1
        assert device.try_reset() == errno.EINVAL


def test_device_close_closes_data_fds():
    import os
    device = open_device(flags=1)
    fd = device.walk(reach(MigState.STOP_COPY, 1))[0]
    device.close(safe=False)
    with pytest.raises(OSError):
        os.fstat(fd.fd)
    fd.close()           # closing after the device is gone is harmless


def test_migration_flags_and_data_size():
    for flags in FLAG_SETS:
        with open_device(flags=int(flags)) as device:
            assert device.migration_flags() == flags
            sizes = set()
            for state in (MigState.RUNNING, MigState.STOP):
                device.walk(reach(state, flags, device.get_state()))
                sizes.add(device.mig_data_size())
            assert sizes == {device.transport.device.layout.stream_len}


def test_failed_set_keeps_the_returned_fd_and_the_device_closes_it():
    """A data_fd written back with an error is kept (so checks see it) and closed with the device."""
    device = open_device(faults=[{"name": "failed_set_returns_fd"}])
    result = device.try_set_state(MigState.ERROR)
    assert result.errno == errno.EINVAL and result.data_fd is not None and result.raw_fd >= 0
    assert result.written_state == MigState.ERROR
    assert device.open_data_fds() == [result.data_fd]
    with pytest.raises(OSError):
        device.set_state(MigState.ERROR)              # the raising form closes its fd itself
    assert device.open_data_fds() == [result.data_fd]
    device.close()
    assert result.data_fd.closed and device.transport.data_fds == {}


def test_set_writes_back_request_and_minus_one():
    with open_device() as device:
        ok = device.try_set_state(MigState.STOP)
        assert (ok.errno, ok.written_state, ok.raw_fd, ok.data_fd) == (0, MigState.STOP, -1, None)
        bad = device.try_set_state(0xFFFFFFFF)
        assert (bad.errno, bad.written_state, bad.raw_fd) == (errno.EINVAL, 0xFFFFFFFF, -1)


def test_data_fd_access_modes_and_stop_copy_poll():
    import os
    import select
    with open_device() as device:
        device.set_state(MigState.STOP)
        saving = device.set_state(MigState.STOP_COPY)
        assert saving.access_mode == os.O_RDONLY and saving.cloexec
        assert saving.poll() & select.POLLIN
        saving.drain()
        assert saving.poll() & select.POLLIN           # end of STOP_COPY data: readable for good
        device.set_state(MigState.STOP)
        resuming = device.set_state(MigState.RESUMING)
        assert resuming.access_mode == os.O_WRONLY
        assert resuming.try_precopy_info()[0] == errno.ENOTTY


def test_precopy_temporary_end_is_not_readable():
    with open_device() as device:
        fd = device.set_state(MigState.PRE_COPY)
        fd.drain(4096, allow_enomsg=True)
        assert fd.poll() == 0


@pytest.mark.parametrize("flags", [int(f) for f in FLAG_SETS])
def test_interior_step_failure_stays_at_last_step(flags):
    """The sim's fail_step hook: the state is the last completed step of the path."""
    for current in supported_states(flags):
        for target in supported_states(flags):
            p = plan(current, target, flags)
            if len(p.path) < 2 or p.hazard:
                continue
            for step in range(1, len(p.path) + 1):
                with open_device(flags=flags) as device:
                    stream = saved_stream(flags)
                    for fd in enter(device, current, stream):
                        fd.close()
                    device.test_hooks.fail_step(step)
                    assert device.try_set_state(target).errno == errno.EIO
                    want = p.path[step - 2] if step > 1 else current
                    assert device.get_state() == want, (current, target, step)
