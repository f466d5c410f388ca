"""A device is never given back to its driver while this process still holds it: the kernel's unbind
would wait for the last user forever (seen in the lab: a SIGTERM cut a health check's open short, its
device fd stayed open, and the inventory's restore hung "until released by user"). What the process
left open is closed first; what it cannot close makes the restore refuse, never hang. And the steps
that open or close a device cannot be cut half-way by a SIGTERM."""
from __future__ import annotations

import mmap
import os
import signal
import types

import pytest

from test_inventory import BDF, FakeKernel, host  # noqa: F401  (the fixture)
from vfio_conform.backends.kernel import holdings
from vfio_conform.backends.kernel.bind import BindError, bind, current_driver, restore
from vfio_conform.backends.kernel.open_paths import OpenedDevice
from vfio_conform.base import interrupts


class HoldingKernel(FakeKernel):
    """The fake kernel, with the real one's rule: an unbind from vfio-pci while this process holds
    the device never returns (here: the test fails instead of hanging)."""

    def __init__(self, fake_host, native, opened: list[OpenedDevice]):
        super().__init__(fake_host, native)
        self.opened = opened

    def write(self, path, text):
        if path.name == "unbind" and current_driver(text.strip(), self.host.sys) == "vfio-pci":
            still = [o for o in self.opened if o.fd_kinds()]
            assert not still, f"unbind while this process holds {still}: the real kernel waits forever"
        super().write(path, text)


def _opened(name: str = BDF) -> OpenedDevice:
    device, group = os.pipe()
    opened = OpenedDevice(name=name, path_kind="group", device_fd=device, group_fd=group)
    holdings.note_opened(opened)
    return opened


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_restore_closes_what_the_process_left_open_then_unbinds(host):  # noqa: F811
    opened = _opened(BDF.removeprefix("0000:"))          # the same device, named without its domain
    fds = (opened.device_fd, opened.group_fd)
    mapping = mmap.mmap(-1, mmap.PAGESIZE)
    holdings.note_mapped(BDF, mapping)
    other = _opened("0000:00:1f.0")                       # another device: left alone
    kernel = HoldingKernel(host, {BDF: "e1000e"}, [opened])
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    try:
        closed = restore(record, host.sys, kernel.write)
        assert current_driver(BDF, host.sys) == "e1000e"
        assert closed[0] == "a region mapping" and len(closed) == 2, closed
        assert closed[1].startswith("its group fds opened by test_holdings.py:") and \
            closed[1].endswith(" in _opened"), closed
        assert all(_closed(fd) for fd in fds) and mapping.closed
        assert other.fd_kinds(), "a device that is not being given back was closed"
    finally:
        other.close()


def test_nothing_left_open_nothing_said(host):  # noqa: F811
    kernel = FakeKernel(host, {BDF: "e1000e"})
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    assert restore(record, host.sys, kernel.write) == []
    assert current_driver(BDF, host.sys) == "e1000e"


def test_a_mapping_in_use_makes_the_restore_refuse_instead_of_hang(host):  # noqa: F811
    mapping = mmap.mmap(-1, mmap.PAGESIZE)
    holdings.note_mapped(BDF, mapping)
    view = memoryview(mapping)             # a live buffer into it: the mapping cannot be closed
    kernel = FakeKernel(host, {BDF: "e1000e"})
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    try:
        with pytest.raises(BindError, match="still holds a VFIO device.*wait for it forever"):
            restore(record, host.sys, kernel.write)
        assert current_driver(BDF, host.sys) == "vfio-pci"
        assert not [w for w in kernel.writes if w[0].endswith("vfio-pci/unbind")]
    finally:
        view.release()
        mapping.close()


def test_a_vfio_fd_the_harness_did_not_open_makes_the_restore_refuse(host, tmp_path):  # noqa: F811
    proc = tmp_path / "proc-self"
    (proc / "fd").mkdir(parents=True)
    os.symlink("anon_inode:[vfio-device]", proc / "fd" / "7")
    os.symlink("/dev/null", proc / "fd" / "0")
    (proc / "maps").write_text("7f00-7f01 rw-s 00000000 00:0e 1234   /dev/vfio/devices/vfio0\n"
                               "7f02-7f03 r--p 00000000 08:01 99     /usr/lib/libc.so.6\n")
    assert holdings.held_here(proc) == ["fd 7 (anon_inode:[vfio-device])",
                                        "mapping 7f00-7f01 (/dev/vfio/devices/vfio0)"]
    kernel = FakeKernel(host, {BDF: "e1000e"})
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    with pytest.raises(BindError, match=r"fd 7 \(anon_inode:\[vfio-device\]\).*stays on vfio-pci"):
        restore(record, host.sys, kernel.write, proc_self=proc)
    assert current_driver(BDF, host.sys) == "vfio-pci"
    assert holdings.held_here() == []           # this test process holds no VFIO device


@pytest.fixture
def sigterm_raises():
    previous = signal.getsignal(signal.SIGTERM)
    interrupts.install_sigterm()
    yield
    interrupts.restore_sigterm()
    interrupts._TERMINATED.clear()
    signal.signal(signal.SIGTERM, previous)


class _Device:
    def __init__(self):
        self.closed = False

    def try_migration_flags(self):
        return 0, 0

    def close(self, safe=True):
        self.closed = True


def test_a_sigterm_while_the_health_check_opens_closes_the_device_then_acts(monkeypatch, sigterm_raises):
    """The lab's hang: SIGTERM arrives as the health check opens the device just bound."""
    from vfio_conform.hosts import health
    devices = []

    def opening(profile, device_id, role):
        os.kill(os.getpid(), signal.SIGTERM)
        devices.append(_Device())
        return devices[-1]

    monkeypatch.setattr(health, "open_device", opening)
    profile = types.SimpleNamespace(protocol="v2", reset=False, name="p")
    with pytest.raises(interrupts.Terminated):
        health.health_check(profile, BDF, "source")
    assert devices and devices[0].closed


def test_a_sigterm_while_a_device_closes_lets_every_fd_close(sigterm_raises):
    """Device.close closes its data fds and then the device fd: a SIGTERM at the first one must not
    leave the device fd open (it is noted, and acted on at the next test boundary)."""
    from vfio_conform.device import Device
    opened = _opened()

    class Transport:
        name, device_fd = BDF, opened.device_fd

        def close(self, fd):
            opened.close()

    class DataFd:
        def close(self):
            os.kill(os.getpid(), signal.SIGTERM)

    device = Device(Transport())
    device._track(DataFd())
    device.close(safe=False)
    assert not opened.fd_kinds() and interrupts.terminated()
    with pytest.raises(interrupts.Terminated):
        interrupts.raise_if_terminated()


def test_a_device_that_fails_to_wrap_is_closed(monkeypatch):
    """open_device: the backend opened the transport, then building the Device raised (here a
    SIGTERM's Terminated would do the same): the transport is closed, not left open."""
    from vfio_conform.backends import registry
    closed = []
    transport = types.SimpleNamespace(device_fd=5, close=closed.append)
    monkeypatch.setattr(registry, "get", lambda name: types.SimpleNamespace(open=lambda *a: transport))

    def failing(*a, **k):
        raise interrupts.Terminated("SIGTERM")

    monkeypatch.setattr(registry, "Device", failing)
    profile = types.SimpleNamespace(backend="kernel", timeouts=types.SimpleNamespace(io=1.0))
    with pytest.raises(interrupts.Terminated):
        registry.open_device(profile, BDF)
    assert closed == [5]
