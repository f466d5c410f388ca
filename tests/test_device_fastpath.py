"""SET MIG_DEVICE_STATE's hot path: no ctypes structs per call, the kernel's bound ioctl, every
result the suites read (errno, written-back state and data_fd, last operation) kept."""
import errno
import functools

import pytest

from vfio_conform.backends.kernel.transport import KernelTransport
from vfio_conform.backends.sim import open_sim
from vfio_conform.device import Device, SetResult, last_operation
from vfio_conform.device import core
from vfio_conform.base.errors import UapiError
from vfio_conform.uapi.enums import MigState as S


def _no_ctypes(*args, **kwargs):
    raise AssertionError("a SET built a ctypes struct")


class _StructsWithoutMigState:
    """The uapi structs module as the Device sees it, minus the two structs a SET or GET used to build."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        if name in ("vfio_device_feature_mig_state", "vfio_device_feature"):
            return _no_ctypes
        return getattr(self._real, name)


def test_set_builds_no_ctypes_structs_and_keeps_results(monkeypatch):
    with Device(open_sim({"flags": 7}, "fast0"), io_timeout=1.0) as device:
        monkeypatch.setattr(core, "st", _StructsWithoutMigState(core.st))
        assert device.set_state(S.STOP) is None
        result = device.try_set_state(S.STOP_COPY)
        assert result.ok and result.requested == S.STOP_COPY and result.written_state == S.STOP_COPY
        assert result.data_fd is not None and result.raw_fd == result.data_fd.fd >= 0
        assert last_operation().startswith("SET MIG_DEVICE_STATE STOP_COPY on fast0")
        result.data_fd.close()
        bad = device.try_set_state(S.ERROR)
        assert bad.errno == errno.EINVAL and bad.data_fd is None and not bad.ok
        with pytest.raises(UapiError, match="SET MIG_DEVICE_STATE ERROR"):
            device.set_state(S.ERROR)
        assert device.try_set_state(99).errno == errno.EINVAL      # out of range: not cached, still sent
        assert device.get_state() == S.STOP_COPY                  # GET after SET: no ctypes either
        assert device.get_state_raw()[:2] == (0, S.STOP_COPY)
        monkeypatch.undo()


class _BoundTransport:
    """A transport whose bound SET ioctl records its calls and writes a state back."""

    name, device_fd = "bound0", 7

    def __init__(self):
        self.calls = []

    def bound_ioctl(self, fd, request):
        self.calls.append(("bound", fd, request))
        return functools.partial(self._set, fd, request)

    def _set(self, fd, request, buf):
        self.calls.append(("set", fd, int.from_bytes(buf[8:12], "little")))
        buf[12:16] = (-1).to_bytes(4, "little", signed=True)

    def ioctl(self, fd, request, arg=None):
        raise AssertionError("the bound ioctl was not used")

    def close(self, fd):
        pass


def test_device_uses_the_transports_bound_ioctl():
    transport = _BoundTransport()
    device = Device(transport)
    assert device.set_state(S.STOP) is None
    res = device.try_set_state(S.RUNNING)
    assert res.ok and res.raw_fd == -1
    assert transport.calls[0][0] == "bound" and transport.calls[1:] == [("set", 7, S.STOP), ("set", 7, S.RUNNING)]


def test_kernel_transport_binds_fcntl_ioctl():
    transport = KernelTransport.__new__(KernelTransport)
    bound = transport.bound_ioctl(5, 0x3B75)
    assert isinstance(bound, functools.partial) and bound.args == (5, 0x3B75)


def test_set_result_is_a_cheap_value():
    a, b = SetResult(0, 2, 2, None, -1), SetResult(0, 2, 2, None, -1)
    assert a == b and a.ok and not SetResult(22, 2, 1, None).ok
    assert not hasattr(a, "__dict__")
    assert "written_state=2" in repr(a)
