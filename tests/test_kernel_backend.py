"""Kernel backend without a device: sysfs discovery on fake trees, path choice, fd handling, errors."""
from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

import pytest

from vfio_conform.backends import registry
from vfio_conform.device.transport import Transport
from vfio_conform.backends.kernel import (DeviceOpenError, KernelTransport, OpenedDevice, choose_path,
                                          list_devices, open_group, open_kernel, resolve)
from vfio_conform.base.errors import ConfigError, DeviceNotFound, HarnessTimeout, UapiError
from vfio_conform.uapi.ioctl import number

UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"


class FakeHost:
    """A fake /sys and /dev under tmp_path, shaped like the kernel's."""

    def __init__(self, root: Path):
        self.sys, self.dev = root / "sys", root / "dev"
        (self.dev / "vfio").mkdir(parents=True)

    def _group(self, device_dir: Path, group: int, noiommu: bool) -> None:
        gdir = self.sys / "kernel" / "iommu_groups" / str(group)
        gdir.mkdir(parents=True, exist_ok=True)
        if noiommu:
            (gdir / "name").write_text("vfio-noiommu\n")
        (device_dir / "iommu_group").symlink_to(gdir)
        (self.dev / "vfio" / (f"noiommu-{group}" if noiommu else str(group))).touch()

    def pci(self, bdf: str, driver: str | None, vendor: int = 0x1234, device: int = 0x11E8,
            group: int | None = 5, cdev: str | None = None, noiommu: bool = False) -> None:
        real = self.sys / "devices" / "pci0000:00" / bdf
        real.mkdir(parents=True)
        (real / "vendor").write_text(f"{vendor:#06x}\n")
        (real / "device").write_text(f"{device:#06x}\n")
        if driver:
            drv = self.sys / "bus" / "pci" / "drivers" / driver
            drv.mkdir(parents=True, exist_ok=True)
            (real / "driver").symlink_to(drv)
        if group is not None:
            self._group(real, group, noiommu)
        if cdev:
            self._cdev(real, cdev)
        bus = self.sys / "bus" / "pci" / "devices"
        bus.mkdir(parents=True, exist_ok=True)
        (bus / bdf).symlink_to(real)

    def mdev(self, uuid: str, driver: str = "mtty", mdev_type: str = "mtty-2", group: int = 7) -> None:
        parent = self.sys / "devices" / "virtual" / "mtty" / "mtty"
        real = parent / uuid
        real.mkdir(parents=True)
        tdir = parent / "mdev_supported_types" / mdev_type
        tdir.mkdir(parents=True, exist_ok=True)
        (real / "mdev_type").symlink_to(tdir)
        drv = self.sys / "bus" / "mdev" / "drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        (real / "driver").symlink_to(drv)
        self._group(real, group, False)
        bus = self.sys / "bus" / "mdev" / "devices"
        bus.mkdir(parents=True, exist_ok=True)
        (bus / uuid).symlink_to(real)

    def _cdev(self, real: Path, name: str) -> None:
        node = real / "vfio-dev" / name
        node.mkdir(parents=True)
        (node / "device").symlink_to(real)
        cls = self.sys / "class" / "vfio-dev"
        cls.mkdir(parents=True, exist_ok=True)
        (cls / name).symlink_to(node)
        (self.dev / "vfio" / "devices").mkdir(exist_ok=True)
        (self.dev / "vfio" / "devices" / name).touch()

    def resolve(self, device_id: str):
        return resolve(device_id, sysfs_root=self.sys, dev_root=self.dev)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


# --------------------------------------------------------------------------- discovery

def test_pci_device_bound_to_vfio_pci(host: FakeHost):
    host.pci("0000:00:03.0", "vfio-pci", vendor=0x1234, device=0x11E8, group=5)
    loc = host.resolve("0000:00:03.0")
    assert (loc.id, loc.kind, loc.driver) == ("0000:00:03.0", "pci", "vfio-pci")
    assert (loc.vendor_id, loc.device_id, loc.mdev_type) == (0x1234, 0x11E8, None)
    assert loc.iommu_group == 5 and loc.group_path == str(host.dev / "vfio" / "5")
    assert loc.cdev_path is None and not loc.noiommu and loc.vfio_bound


@pytest.mark.parametrize("spelling", ["00:03.0", "0000:00:03.0", "0000:00:03.0\n"])
def test_bdf_spellings(host: FakeHost, spelling: str):
    host.pci("0000:00:03.0", "vfio-pci")
    assert host.resolve(spelling).id == "0000:00:03.0"


def test_mdev_device(host: FakeHost):
    host.mdev(UUID, driver="mtty", mdev_type="mtty-2", group=7)
    loc = host.resolve(UUID.upper())
    assert (loc.id, loc.kind, loc.driver, loc.mdev_type) == (UUID, "mdev", "mtty", "mtty-2")
    assert loc.vendor_id is None and loc.device_id is None
    assert loc.group_path == str(host.dev / "vfio" / "7") and loc.vfio_bound


def test_missing_device_says_how_to_find_one(host: FakeHost):
    with pytest.raises(DeviceNotFound) as info:
        host.resolve("0000:00:09.0")
    text = str(info.value)
    assert "0000:00:09.0" in text and "not found" in text
    assert "vfio-conform devices" in text and "ls /sys/bus/mdev/devices" in text
    assert "driver_override" in text


def test_garbage_id_is_not_found(host: FakeHost):
    with pytest.raises(DeviceNotFound, match="not a PCI address"):
        host.resolve("eth0")


def test_noiommu_group_naming(host: FakeHost):
    host.pci("0000:00:04.0", "vfio-pci", group=9, noiommu=True)
    loc = host.resolve("00:04.0")
    assert loc.group_path == str(host.dev / "vfio" / "noiommu-9") and loc.noiommu
    assert choose_path(loc, "auto", host.dev) == "noiommu"


def test_noiommu_found_by_node_name_alone(host: FakeHost):
    host.pci("0000:00:04.0", "vfio-pci", group=9, noiommu=True)
    (host.sys / "kernel" / "iommu_groups" / "9" / "name").unlink()
    assert host.resolve("00:04.0").noiommu


def test_cdev_discovery_and_lookup_by_path(host: FakeHost):
    host.pci("0000:00:05.0", "vfio-pci", group=3, cdev="vfio2")
    loc = host.resolve("0000:00:05.0")
    assert loc.cdev_path == str(host.dev / "vfio" / "devices" / "vfio2")
    assert host.resolve(str(host.dev / "vfio" / "devices" / "vfio2")) == loc
    assert host.resolve("vfio2") == loc


@pytest.mark.parametrize("where", ["/any/dir/vfio2", "/dev/vfio/vfio2", "./vfio2", "/vfio2"])
def test_cdev_elsewhere_than_the_cdev_directory_is_refused(host: FakeHost, where):
    """A vfioN outside DEV/vfio/devices is not quietly taken for the node of the same name."""
    host.pci("0000:00:05.0", "vfio-pci", group=3, cdev="vfio2")
    with pytest.raises(DeviceNotFound, match="is not a (VFIO device node|PCI address)"):
        host.resolve(where)


def test_auto_path_prefers_cdev_when_iommufd_exists(host: FakeHost):
    host.pci("0000:00:05.0", "vfio-pci", group=3, cdev="vfio2")
    loc = host.resolve("0000:00:05.0")
    assert choose_path(loc, "auto", host.dev) == "group"          # no /dev/iommu yet
    (host.dev / "iommu").touch()
    assert choose_path(loc, "auto", host.dev) == "cdev"
    assert choose_path(loc, "group", host.dev) == "group"
    with pytest.raises(ConfigError, match="'noiommu' is not available"):
        choose_path(loc, "noiommu", host.dev)
    with pytest.raises(ConfigError, match="unknown open path"):
        choose_path(loc, "magic", host.dev)


def test_list_devices_keeps_only_vfio_bound(host: FakeHost):
    host.pci("0000:00:03.0", "vfio-pci", group=1)
    host.pci("0000:00:04.0", "mlx5_vfio_pci", group=2)
    host.pci("0000:00:05.0", "e1000e", group=3)
    host.pci("0000:00:06.0", None, group=4)
    host.mdev(UUID)
    found = list_devices(sysfs_root=host.sys, dev_root=host.dev)
    assert [(d.id, d.driver) for d in found] == [
        ("0000:00:03.0", "vfio-pci"), ("0000:00:04.0", "mlx5_vfio_pci"), (UUID, "mtty")]


def test_list_devices_on_empty_host(tmp_path: Path):
    assert list_devices(sysfs_root=tmp_path) == []


def test_open_refuses_device_not_bound_to_vfio(host: FakeHost):
    host.pci("0000:00:05.0", "e1000e")
    with pytest.raises(ConfigError, match="bound to e1000e, not to a vfio driver") as info:
        open_kernel("0000:00:05.0", sysfs_root=host.sys, dev_root=host.dev)
    assert "driver_override" in str(info.value)


def test_registered_as_kernel_backend():
    from vfio_conform.backends.kernel.backend import KernelBackend
    kernel = registry.get("kernel")
    assert isinstance(kernel, KernelBackend) and kernel.host_devices and "kernel" in registry.names()


# --------------------------------------------------------------------------- open path errors

def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_open_group_missing_container_names_path_and_errno(host: FakeHost):
    before = _open_fds()
    with pytest.raises(DeviceOpenError) as info:
        open_group("0000:00:03.0", str(host.dev / "vfio" / "5"))
    text = str(info.value)
    assert str(host.dev / "vfio" / "vfio") in text and "open(container)" in text and "ENOENT" in text
    assert "modprobe vfio" in text and info.value.errno == errno.ENOENT
    assert _open_fds() == before


def test_open_group_ioctl_failure_names_ioctl_and_closes_fds(host: FakeHost):
    (host.dev / "vfio" / "vfio").touch()            # a regular file: every ioctl gives ENOTTY
    before = _open_fds()
    with pytest.raises(DeviceOpenError) as info:
        open_group("0000:00:03.0", str(host.dev / "vfio" / "5"))
    text = str(info.value)
    assert "VFIO_GET_API_VERSION" in text and "ENOTTY" in text and str(host.dev / "vfio" / "vfio") in text
    assert _open_fds() == before


# --------------------------------------------------------------------------- transport

@pytest.fixture
def transport(tmp_path: Path):
    """A transport whose 'device' is a regular file and whose group/container are pipes."""
    path = tmp_path / "device"
    path.write_bytes(bytes(range(16)))
    device = os.open(path, os.O_RDWR)
    group_r, container_w = os.pipe()
    t = KernelTransport(OpenedDevice("fake", "group", device_fd=device, group_fd=group_r,
                                     container_fd=container_w), io_timeout=5.0)
    yield t
    t.close_all()


def test_transport_satisfies_protocol(transport: KernelTransport):
    assert isinstance(transport, Transport)


def test_bounded_read_times_out_on_silent_pipe(transport: KernelTransport):
    r, w = os.pipe()
    try:
        start = time.monotonic()
        with pytest.raises(HarnessTimeout) as info:
            transport.read(r, 64, timeout=0.2)
        assert 0.15 < time.monotonic() - start < 2.0
        assert f"read(64) on data fd {r}" in str(info.value) and "0.2s" in str(info.value)
        os.write(w, b"abc")
        assert transport.read(r, 64, timeout=0.2) == b"abc"
    finally:
        os.close(r), os.close(w)


def test_bounded_write_times_out_on_full_pipe(transport: KernelTransport):
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            try:
                os.write(w, b"x" * 65536)
            except BlockingIOError:
                break
        with pytest.raises(HarnessTimeout, match=f"write\\(4\\) on data fd {w}"):
            transport.write(w, b"data", timeout=0.2)
    finally:
        os.close(r), os.close(w)


def test_read_reports_eof_and_errno(transport: KernelTransport):
    r, w = os.pipe()
    os.close(w)
    assert transport.read(r, 8, timeout=1) == b""
    os.close(r)
    with pytest.raises(UapiError) as info:
        transport.read(r, 8, timeout=1)
    assert info.value.errno == errno.EBADF and "EBADF" in str(info.value)


def test_ioctl_error_names_ioctl_fd_kind_and_errno(transport: KernelTransport):
    with pytest.raises(UapiError) as info:
        transport.ioctl(transport.device_fd, number("VFIO_DEVICE_GET_INFO"), bytearray(24))
    assert info.value.errno == errno.ENOTTY
    text = str(info.value)
    assert "VFIO_DEVICE_GET_INFO on device fd" in text and "ENOTTY" in text and "fake" in text
    r, w = os.pipe()
    try:
        with pytest.raises(OSError, match="VFIO_MIG_GET_PRECOPY_INFO on data fd"):
            transport.ioctl(r, number("VFIO_MIG_GET_PRECOPY_INFO"), bytearray(24))
        # 0x3B70 is GET_PCI_HOT_RESET_INFO on a device but IOMMU_GET_INFO on a container
        with pytest.raises(OSError, match="VFIO_IOMMU_GET_INFO on container fd"):
            transport.ioctl(transport.opened.container_fd, number("VFIO_IOMMU_GET_INFO"), 0)
    finally:
        os.close(r), os.close(w)


def test_pread_pwrite_and_errors(transport: KernelTransport):
    assert transport.pread(transport.device_fd, 4, 2) == bytes([2, 3, 4, 5])
    assert transport.pwrite(transport.device_fd, b"\xff", 0) == 1
    assert transport.pread(transport.device_fd, 1, 0) == b"\xff"
    r, w = os.pipe()
    try:
        with pytest.raises(UapiError) as info:
            transport.pread(r, 4, 0)
        assert info.value.errno == errno.ESPIPE and "pread(4 bytes at 0x0) on data fd" in str(info.value)
    finally:
        os.close(r), os.close(w)


def test_mmap_shares_the_file(transport: KernelTransport):
    m = transport.mmap(transport.device_fd, 16, 0, writable=True)
    m[0:1] = b"\x7f"
    m.close()
    assert transport.pread(transport.device_fd, 1, 0) == b"\x7f"


def test_closing_device_fd_closes_group_and_container(transport: KernelTransport):
    fds = [transport.device_fd, transport.opened.group_fd, transport.opened.container_fd]
    transport.close(transport.device_fd)
    for fd in fds:
        with pytest.raises(OSError) as info:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        assert info.value.errno == errno.EBADF
    transport.close_all()                          # idempotent


def test_mdev_group_named_noiommu_uses_plain_node(host: FakeHost):
    """mdev groups carry the sysfs name 'vfio-noiommu' but their node is /dev/vfio/N (seen in the lab)."""
    uuid = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
    host.mdev(uuid, group=12)
    gdir = host.sys / "kernel" / "iommu_groups" / "12"
    gdir.mkdir(parents=True, exist_ok=True)
    (gdir / "name").write_text("vfio-noiommu\n")
    loc = resolve(uuid, host.sys, host.dev)
    assert loc.group_path == str(host.dev / "vfio" / "12") and not loc.noiommu


# --------------------------------------------------------------------------- checks before a run

def check_devices(profile, device_ids, sysfs_root, dev_root) -> str:
    """The kernel backend's own device check, on a fake host."""
    from vfio_conform.backends.kernel.backend import KernelBackend
    return KernelBackend(sysfs_root, dev_root).check_devices(profile, device_ids)


def _kernel_profile(tmp_path: Path):
    from vfio_conform.profile import load_profile
    path = tmp_path / "k.yaml"
    path.write_text("name: k\nbackend: kernel\nmigration: {flags: [STOP_COPY]}\n")
    return load_profile(path)


def test_check_devices_refuses_a_pci_device_not_bound_to_vfio(host: FakeHost, tmp_path):
    host.pci("0000:00:03.0", "e1000e", group=5)
    host.pci("0000:00:04.0", None, group=6)
    host.pci("0000:00:05.0", "vfio-pci", group=7)
    profile = _kernel_profile(tmp_path)
    with pytest.raises(ConfigError, match="'0000:00:03.0' is bound to e1000e, not to a VFIO driver"):
        check_devices(profile, ("0000:00:05.0", "0000:00:03.0"), host.sys, host.dev)
    with pytest.raises(ConfigError, match="bound to no driver"):
        check_devices(profile, ("00:04.0",), host.sys, host.dev)
    assert check_devices(profile, ("0000:00:05.0",), host.sys, host.dev) == "vfio-pci"


@pytest.mark.parametrize("second", ["0000:00:05.0", "00:05.0", "vfio2", "CDEV"])
def test_check_devices_refuses_the_same_device_twice(host: FakeHost, tmp_path, second):
    host.pci("0000:00:05.0", "vfio-pci", group=3, cdev="vfio2")
    host.pci("0000:00:06.0", "vfio-pci", group=4, cdev="vfio3")
    second = str(host.dev / "vfio" / "devices" / "vfio2") if second == "CDEV" else second
    profile = _kernel_profile(tmp_path)
    with pytest.raises(ConfigError, match="device 0000:00:05.0 is named twice"):
        check_devices(profile, ("0000:00:05.0", second), host.sys, host.dev)
    assert check_devices(profile, ("0000:00:05.0", "vfio3"), host.sys, host.dev) == "vfio-pci"


def test_check_devices_refuses_the_same_mdev_twice(host: FakeHost, tmp_path):
    host.mdev(UUID)
    with pytest.raises(ConfigError, match="is named twice"):
        check_devices(_kernel_profile(tmp_path), (UUID, UUID.upper()), host.sys, host.dev)
