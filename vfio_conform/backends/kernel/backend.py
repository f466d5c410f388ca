"""The kernel as a registered backend: host VFIO devices by BDF, mdev UUID or cdev path."""
from __future__ import annotations

from pathlib import Path

from ...device.kmsg import DevKmsg
from ...base.errors import ConfigError
from ..registry import Backend, check_distinct
from . import open_kernel
from .sysfs import FIND_HINT, list_devices, resolve


class KernelBackend(Backend):
    """Real devices bound to a VFIO driver. It takes no `backend_config.kernel` keys.

    Args:
        sysfs_root, dev_root: where sysfs and /dev are (a fake tree in tests).
    """

    name = "kernel"
    host_devices = True

    def __init__(self, sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev"):
        self.sysfs_root, self.dev_root = sysfs_root, dev_root

    def check_devices(self, profile, device_ids: tuple[str, ...]) -> str:
        """Each id must exist and be bound to a VFIO driver, each device named once; its driver(s)."""
        locs = [resolve(device_id, self.sysfs_root, self.dev_root) for device_id in device_ids]
        check_distinct(device_ids, tuple(loc.id for loc in locs))
        for device_id, loc in zip(device_ids, locs):
            if not loc.vfio_bound:
                raise ConfigError(f"device {device_id!r} is bound to {loc.driver or 'no driver'}, "
                                  f"not to a VFIO driver", hint=FIND_HINT)
        return ",".join(sorted({loc.driver or "?" for loc in locs}))

    def open(self, profile, device_id: str, role: str):
        return open_kernel(device_id, io_timeout=profile.timeouts.io, sysfs_root=self.sysfs_root,
                           dev_root=self.dev_root)

    def describe_device(self, profile, device_id: str):
        from .environment import describe
        return describe(device_id, self.sysfs_root, self.dev_root)

    def kernel_log(self):
        """This kernel's /dev/kmsg from its end (OSError when it cannot be read, e.g. not root)."""
        return DevKmsg(str(Path(self.dev_root) / "kmsg"))

    def list_host_devices(self, root: str | None = None) -> list:
        return list_devices(sysfs_root=root or self.sysfs_root, dev_root=self.dev_root)


BACKEND = KernelBackend()
