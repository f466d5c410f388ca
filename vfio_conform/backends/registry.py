"""A backend is one registered object: its profile section, its device names, and how to open one.

Backends are found by name in the `vfio_conform.backends` extension group (the built-in `sim`,
`kernel` and `vfio-user`, plus any package declaring an entry point there; see vfio_conform/base/extensions.py and
docs/extending.md). The core never names a backend: it asks the profile's one for everything.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..device import Device
from ..base.errors import ConfigError
from ..base.extensions import BACKENDS, ExtensionError
from ..model.spec import DATA_FD
from ..results.environment import DeviceEnvironment
from ..device.transport import Transport

if TYPE_CHECKING:
    from ..profile.schema import Profile

#: Device roles by position in a target's device list (a pool opens device i as ROLES[i]).
ROLES = ("source", "destination")


def role_of(index: int) -> str:
    return ROLES[index] if index < len(ROLES) else f"device{index}"


class Backend:
    """What every backend provides. Subclass it, set `name`, and override what differs.

    Attributes:
        name: the backend's name: the profile's `backend:` value and its `backend_config` key.
        host_devices: True when the backend opens devices of this host that `vfio-conform devices`
            lists and matches against profiles' `match:` (see `list_host_devices`).
        transport: how migration data moves (model.spec.TRANSPORTS): the kernel's data fd, or
            messages (vfio-user); rules about the data fd object are not-supported on the latter.
    """

    name: str = ""
    host_devices: bool = False
    transport: str = DATA_FD

    def check_config(self, profile: "Profile", config: dict, field: str) -> None:
        """Validate this backend's `backend_config.<name>` section (`config`, at dotted `field`).

        Raise `profile.error(field + '.key', message)` so the user sees file:line: field. The default
        accepts only an empty section.
        """
        for key in config:
            raise profile.error(f"{field}.{key}", f"backend {self.name!r} takes no key {key!r}")

    def check_devices(self, profile: "Profile", device_ids: tuple[str, ...]) -> str:
        """Refuse device ids this backend cannot open (ConfigError); return the driver name(s).

        Called before any device is opened; must not change any device.
        """
        check_distinct(device_ids, device_ids)
        return self.name

    def open(self, profile: "Profile", device_id: str, role: str) -> Transport:
        """Open `device_id` (already checked) for `role` ('source', 'destination', ...)."""
        raise NotImplementedError

    def describe_device(self, profile: "Profile", device_id: str) -> DeviceEnvironment:
        """Driver, firmware, identity and IOMMU mode of `device_id` (results.environment), read
        without opening or changing it. The default names this backend in every field."""
        return DeviceEnvironment.uniform(device_id, self.name)

    def kernel_log(self):
        """The kernel log its devices' drivers write to (a device.kmsg.LogSource, opened at its end),
        or None when there is none to read; OSError when it exists but cannot be read."""
        return None

    def server_log(self, device_id: str):
        """The output of the user-space server behind `device_id` (an object with read_new() -> str,
        opened at its end), read for sanitizer reports (plugin/sanitizers.py); None when the device
        has no server (kernel), OSError when its log cannot be found."""
        return None

    def list_host_devices(self, root: str | None = None) -> list:
        """Host devices for `vfio-conform devices` (objects with id, kind, driver, vendor_id,
        device_id, mdev_type, group_path); only when `host_devices` is True. `root`: where the
        host's device tree is (e.g. a fake sysfs), None for the real one."""
        return []


def get(name: str) -> Backend:
    """The backend registered as `name` (ConfigError listing the known ones)."""
    try:
        return BACKENDS.load(name)
    except ExtensionError as exc:
        raise ConfigError(str(exc)) from None


def names() -> list[str]:
    return BACKENDS.names()


def host_backends() -> list[Backend]:
    """The backends that list host devices (`vfio-conform devices`)."""
    return [b for b in BACKENDS.load_all().values() if b.host_devices]


def config_of(profile: "Profile") -> dict:
    """The profile's own backend section (`backend_config.<backend>`; {} when absent)."""
    return dict(profile.backend_config.get(profile.backend) or {})


def check_profile(profile: "Profile") -> Backend:
    """Validate the profile's backend section with its backend's own schema; returns the backend."""
    backend = get(profile.backend)
    backend.check_config(profile, config_of(profile), f"backend_config.{profile.backend}")
    if profile.lab is not None and not backend.host_devices:
        raise profile.error("lab", f"a 'lab' section needs a backend that opens host devices "
                                   f"(backend {profile.backend!r} does not)")
    return backend


def check_devices(profile: "Profile", device_ids: tuple[str, ...]) -> str:
    """The backend section and the device ids, checked by the profile's backend; its driver name(s)."""
    return check_profile(profile).check_devices(profile, tuple(device_ids))


def open_device(profile: "Profile", device_id: str, role: str = "source") -> Device:
    """Open `device_id` with the profile's backend; the Device is returned in whatever state it was."""
    transport = get(profile.backend).open(profile, device_id, role)
    try:
        return Device(transport, io_timeout=profile.timeouts.io)
    except BaseException:      # nobody else holds the transport yet: close it, or it stays open
        transport.close(transport.device_fd)
        raise


def check_distinct(given: tuple[str, ...], canonical: tuple[str, ...]) -> None:
    """Refuse the same device twice (`canonical[i]` is the backend's own name for `given[i]`)."""
    seen: dict[str, str] = {}
    for name, canon in zip(given, canonical):
        if canon in seen:
            first = seen[canon]
            same = f" ({first!r} and {name!r} are both {canon})" if first != name else ""
            raise ConfigError(f"device {canon} is named twice{same}: the source and the destination "
                              f"of a migration must be two different devices")
        seen[canon] = name
