"""The three ways to open a VFIO device fd: container+group, no-IOMMU group, iommufd cdev.

Each returns an `OpenedDevice` holding every fd it opened. Any failure closes what was
opened so far and raises `DeviceOpenError` naming the path, the operation, the errno
name and what to check.
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import os
import struct
from pathlib import Path

from ...base.errors import ConfigError, errno_name
from ...base.interrupts import deferred
from ...uapi import structs as st
from ...uapi.enums import VFIO_API_VERSION, Extension, GroupFlag
from ...uapi.ioctl import number


class DeviceOpenError(ConfigError):
    """Opening a device failed: `path`, `operation` and `errno` (0 for a failed check) say where."""

    def __init__(self, path: str, operation: str, code: int, check: str, detail: str = ""):
        self.device_path, self.operation, self.errno = path, operation, code
        what = errno_name(code) if code else detail
        super().__init__(f"{operation} on {path} failed: {what}", hint=f"check: {check}")


@dataclasses.dataclass(eq=False)
class OpenedDevice:
    """All fds of one opened device; `close()` closes the device fd first, then the rest (compared
    by identity: two holders of equal fd numbers at different times are different holders)."""

    name: str
    path_kind: str                     # "group" | "noiommu" | "cdev"
    device_fd: int = -1
    group_fd: int | None = None
    container_fd: int | None = None
    iommufd: int | None = None
    ioas_id: int | None = None
    devid: int | None = None

    def fd_kinds(self) -> dict[int, str]:
        """fd -> 'device' / 'group' / 'container' / 'iommufd' for the fds still open."""
        kinds = {self.device_fd: "device", self.group_fd: "group",
                 self.container_fd: "container", self.iommufd: "iommufd"}
        return {fd: kind for fd, kind in kinds.items() if fd is not None and fd >= 0}

    def close(self) -> None:
        with deferred():       # all of them: a SIGTERM half-way must not leave one open
            for attr in ("device_fd", "group_fd", "container_fd", "iommufd"):
                fd = getattr(self, attr)
                if fd is not None and fd >= 0:
                    setattr(self, attr, -1 if attr == "device_fd" else None)
                    try:
                        os.close(fd)
                    except OSError:
                        pass


# --------------------------------------------------------------------------- helpers

def _open(path: str, role: str, check: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        hints = {errno.ENOENT: f"{path} does not exist: {check}",
                 errno.EACCES: f"permissions on {path} (run as root or give your user access)",
                 errno.EPERM: f"permissions on {path} (run as root; no-IOMMU needs CAP_SYS_RAWIO)",
                 errno.EBUSY: f"{path} is already open elsewhere (another harness or a VM?)"}
        raise DeviceOpenError(path, f"open({role})", exc.errno or errno.EIO,
                              hints.get(exc.errno, check)) from None


def _ioctl(fd: int, name: str, arg: bytearray | int, path: str, check: str) -> int:
    try:
        if isinstance(arg, bytearray):
            return fcntl.ioctl(fd, number(name), arg, True)
        return fcntl.ioctl(fd, number(name), arg)
    except OSError as exc:
        raise DeviceOpenError(path, name, exc.errno or errno.EIO, check) from None


def _struct_buf(obj: st.VfioStruct) -> bytearray:
    return bytearray(bytes(obj))


# --------------------------------------------------------------------------- container + group

def _container_path(group_path: str) -> str:
    return str(Path(group_path).parent / "vfio")


def _open_with_container(name: str, group_path: str, kind: str, iommu_types: list[Extension]) -> OpenedDevice:
    opened = OpenedDevice(name=name, path_kind=kind)
    container_path = _container_path(group_path)
    group_no = Path(group_path).name.removeprefix("noiommu-")
    try:
        opened.container_fd = c = _open(container_path, "container",
                                        "modprobe vfio (is CONFIG_VFIO_CONTAINER enabled?)")
        version = _ioctl(c, "VFIO_GET_API_VERSION", 0, container_path, "a VFIO container node")
        if version != VFIO_API_VERSION:
            raise DeviceOpenError(container_path, "VFIO_GET_API_VERSION", 0,
                                  "kernel and harness speak different VFIO API versions",
                                  f"version {version}, expected {VFIO_API_VERSION}")
        iommu = next((t for t in iommu_types
                      if _ioctl(c, "VFIO_CHECK_EXTENSION", int(t), container_path, "container") > 0), None)
        if iommu is None:
            wanted = " or ".join(f"VFIO_{t.name}" for t in iommu_types)
            check = ("modprobe vfio_iommu_type1" if kind == "group" else
                     "CONFIG_VFIO_NOIOMMU=y and echo Y > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
            raise DeviceOpenError(container_path, "VFIO_CHECK_EXTENSION", 0, check, f"{wanted} not supported")
        opened.group_fd = g = _open(group_path, "group",
                                    f"is {name} bound to vfio-pci (or an mdev), and is vfio loaded?")
        status = _struct_buf(st.vfio_group_status(argsz=ctypes.sizeof(st.vfio_group_status)))
        _ioctl(g, "VFIO_GROUP_GET_STATUS", status, group_path, "a VFIO group node")
        if not st.vfio_group_status.from_bytes(status).flags & GroupFlag.VIABLE:
            raise DeviceOpenError(
                group_path, "VFIO_GROUP_GET_STATUS", 0,
                f"every device in the group must be bound to a vfio driver or unbound: "
                f"ls /sys/kernel/iommu_groups/{group_no}/devices", "group is not VIABLE")
        _ioctl(g, "VFIO_GROUP_SET_CONTAINER", bytearray(struct.pack("i", c)), group_path,
               "the group may already belong to another container")
        _ioctl(c, "VFIO_SET_IOMMU", int(iommu), container_path,
               "EPERM: no interrupt remapping (enable it, or vfio_iommu_type1 "
               "allow_unsafe_interrupts=1); no-IOMMU needs CAP_SYS_RAWIO")
        opened.device_fd = _ioctl(g, "VFIO_GROUP_GET_DEVICE_FD", bytearray(name.encode() + b"\0"),
                                  group_path, f"is {name} in this group and not already open (EBUSY)?")
        return opened
    except BaseException:
        opened.close()
        raise


def open_group(name: str, group_path: str) -> OpenedDevice:
    """Container + group path: TYPE1v2 IOMMU (fallback TYPE1), device by BDF or mdev UUID."""
    return _open_with_container(name, group_path, "group",
                                [Extension.TYPE1v2_IOMMU, Extension.TYPE1_IOMMU])


def open_noiommu(name: str, group_path: str) -> OpenedDevice:
    """No-IOMMU group (/dev/vfio/noiommu-N) with VFIO_NOIOMMU_IOMMU; needs CAP_SYS_RAWIO."""
    return _open_with_container(name, group_path, "noiommu", [Extension.NOIOMMU_IOMMU])


# --------------------------------------------------------------------------- iommufd cdev

def open_cdev(name: str, cdev_path: str, iommu_path: str = "/dev/iommu") -> OpenedDevice:
    """iommufd path: open the cdev, BIND_IOMMUFD, allocate an IOAS and ATTACH the device to it."""
    opened = OpenedDevice(name=name, path_kind="cdev")
    try:
        opened.device_fd = d = _open(cdev_path, "vfio cdev",
                                     f"is {name} bound to vfio-pci and CONFIG_VFIO_DEVICE_CDEV set?")
        opened.iommufd = i = _open(iommu_path, "iommufd", "modprobe iommufd (CONFIG_IOMMUFD)")
        bind = _struct_buf(st.vfio_device_bind_iommufd(
            argsz=ctypes.sizeof(st.vfio_device_bind_iommufd), iommufd=i))
        _ioctl(d, "VFIO_DEVICE_BIND_IOMMUFD", bind, cdev_path,
               "EBUSY: device already bound/open; EPERM: group also opened via /dev/vfio/N?")
        opened.devid = st.vfio_device_bind_iommufd.from_bytes(bind).out_devid
        alloc = _struct_buf(st.iommu_ioas_alloc(size=ctypes.sizeof(st.iommu_ioas_alloc)))
        _ioctl(i, "IOMMU_IOAS_ALLOC", alloc, iommu_path, "iommufd is usable")
        opened.ioas_id = st.iommu_ioas_alloc.from_bytes(alloc).out_ioas_id
        attach = _struct_buf(st.vfio_device_attach_iommufd_pt(
            argsz=ctypes.sizeof(st.vfio_device_attach_iommufd_pt), pt_id=opened.ioas_id))
        _ioctl(d, "VFIO_DEVICE_ATTACH_IOMMUFD_PT", attach, cdev_path,
               "the device's IOMMU accepts an IOAS (iommufd and the IOMMU driver agree)")
        return opened
    except BaseException:
        opened.close()
        raise
