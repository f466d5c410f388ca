"""Guest-side probe for the lab tests: raw VFIO ioctls on every device in the manifest.

Runs inside a lab guest (stdlib only). Prints one JSON object keyed by device id:
mdev devices get migration flags and a STOP_COPY -> STOP data_fd check; PCI devices
get region sizes of BAR0 and BAR2.
"""
from __future__ import annotations

import fcntl
import json
import os
import struct
import sys

GET_API_VERSION, SET_IOMMU, GROUP_SET_CONTAINER = 0x3B64, 0x3B66, 0x3B68
GROUP_GET_DEVICE_FD, GET_REGION_INFO, DEVICE_FEATURE = 0x3B6A, 0x3B6C, 0x3B75
TYPE1V2 = 3
FEATURE_GET, FEATURE_SET = 1 << 16, 1 << 17
MIGRATION, MIG_DEVICE_STATE = 1, 2
STOP, RUNNING, STOP_COPY = 1, 2, 3


def open_device(group_node: str, name: str) -> tuple[int, int, int]:
    """Container + group + device fd through the legacy group path."""
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    assert fcntl.ioctl(container, GET_API_VERSION) == 0
    group = os.open(group_node, os.O_RDWR)
    fcntl.ioctl(group, GROUP_SET_CONTAINER, struct.pack("i", container))
    fcntl.ioctl(container, SET_IOMMU, TYPE1V2)
    dev = fcntl.ioctl(group, GROUP_GET_DEVICE_FD, bytearray(name.encode() + b"\0"), True)
    return container, group, dev


def migration_flags(dev: int) -> int:
    buf = bytearray(struct.pack("IIQ", 16, FEATURE_GET | MIGRATION, 0))
    fcntl.ioctl(dev, DEVICE_FEATURE, buf, True)
    return struct.unpack_from("Q", buf, 8)[0]


def set_state(dev: int, state: int) -> int:
    """SET the migration state; return the data_fd the kernel handed back (-1 if none)."""
    buf = bytearray(struct.pack("IIIi", 16, FEATURE_SET | MIG_DEVICE_STATE, state, -1))
    fcntl.ioctl(dev, DEVICE_FEATURE, buf, True)
    return struct.unpack_from("i", buf, 12)[0]


def region_size(dev: int, index: int) -> int:
    buf = bytearray(struct.pack("IIIIQQ", 32, 0, index, 0, 0, 0))
    fcntl.ioctl(dev, GET_REGION_INFO, buf, True)
    return struct.unpack_from("Q", buf, 16)[0]


def probe_mdev(dev: int) -> dict:
    out: dict = {"migration_flags": migration_flags(dev)}
    set_state(dev, STOP)
    save_fd = set_state(dev, STOP_COPY)
    out["stop_copy_bytes"] = len(os.read(save_fd, 4096)) if save_fd >= 0 else None
    stop_fd = set_state(dev, STOP)
    out["fd_on_stop_copy_to_stop"] = stop_fd >= 0
    for fd in (save_fd, stop_fd):
        if fd >= 0:
            os.close(fd)
    set_state(dev, RUNNING)
    return out


def main() -> int:
    manifest = json.load(open(os.environ["VFIO_LAB_MANIFEST"]))
    report = {}
    for d in manifest["devices"]:
        container, group, dev = open_device(d["vfio_dev"], d["id"])
        try:
            if manifest["mode"] == "mdev":
                report[d["id"]] = dict(probe_mdev(dev), module=d["module"])
            else:
                report[d["id"]] = {"role": d["role"], "bar0": region_size(dev, 0),
                                   "bar2": region_size(dev, 2)}
        finally:
            for fd in (dev, group, container):
                os.close(fd)
    json.dump(report, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
