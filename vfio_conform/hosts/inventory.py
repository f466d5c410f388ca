"""A host's device inventory: which devices the harness may use, the profile each runs, and what
it may do with them (bind, reset, write regions).

The file is YAML read with the same guard as a profile (no aliases, tags or deep nesting; a mistake
is `file:line: field: message`). Each device names exactly one address:

    pci: 0000:3b:00.1            # a PCI function (bound to `driver` when `allow.bind` is true)
    mdev: {uuid: ..., parent: mtty, type: mtty-2}   # an mdev instance (parent and type: checked)
    socket: /run/vfio-user/dev0.sock                # a vfio-user server
    sim: sim0                    # an instance of a sim profile

`peer: NAME` pairs a device with a second one of the same profile: the two are leased together
(source and destination). Nothing here touches a device.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..base.errors import ConfigError
from ..profile.loader import find_profile, read_marked
from ..profile.schema import Profile, _bool, _list, _map, _no_unknown, _number, _str, yaml_keys
from ..profile.yamlmarks import Marked

#: Where leases (lock files) live unless the inventory or VFIO_CONFORM_LEASE_DIR says otherwise.
DEFAULT_LEASE_DIR = "/run/vfio-conform/leases"
#: Seconds a worker waits for a device of its profile that another run holds.
DEFAULT_LEASE_WAIT = 0.0

ADDRESS_KINDS = ("pci", "mdev", "socket", "sim")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_BDF = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_UUID = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class Allow:
    """What the harness may do with a device.

    Args:
        bind: unbind it from its driver and bind it to `driver` for the run (restored afterwards).
        reset: issue VFIO_DEVICE_RESET (the health check and the suites' return to RUNNING).
        write_regions: write to its regions (profiles with a `readwrite` region need it).
    """

    bind: bool = False
    reset: bool = True
    write_regions: bool = True


@dataclasses.dataclass(frozen=True)
class MdevAddress:
    """An mdev instance (`uuid`), and optionally the parent device and type it must have.

    Args:
        uuid: the instance's UUID (lower case).
        parent: the parent device's sysfs name (e.g. mtty, 0000:3b:00.0).
        type: the mdev type name (e.g. mtty-2).
    """

    uuid: str
    parent: str | None = None
    type: str | None = None


@dataclasses.dataclass(frozen=True)
class InventoryDevice:
    """One device of the host.

    Args:
        name: the device's name in this inventory (unique; shown in reports and lease files).
        profile: the profile it runs (a name, or a YAML path relative to the inventory).
        pci, mdev, socket, sim: its address (exactly one).
        driver: the driver it must be bound to for the run (PCI: default vfio-pci; a variant driver
            such as mlx5_vfio_pci is named here).
        peer: the name of a second device of the same profile, leased together as the destination.
        allow: what the harness may do with it (see Allow).
    """

    name: str
    profile: str
    kind: str = dataclasses.field(metadata={"yaml": False})
    pci: str | None = None
    mdev: MdevAddress | None = None
    socket: str | None = None
    sim: str | None = None
    driver: str | None = None
    peer: str | None = None
    allow: Allow = Allow()
    line: int = dataclasses.field(default=0, metadata={"yaml": False})
    #: The name of the loaded profile (`profile` may be a path).
    profile_name: str = dataclasses.field(default="", metadata={"yaml": False})

    @property
    def device_id(self) -> str:
        """The id the profile's backend opens (BDF, mdev UUID, socket path, sim instance)."""
        if self.kind == "mdev":
            return self.mdev.uuid
        return getattr(self, self.kind)

    @property
    def lease_key(self) -> str:
        """The host-wide name of the device's lease (the same device always has the same key)."""
        if self.kind == "socket":
            return "socket" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.socket)
        if self.kind == "sim":
            return f"sim-{self.profile_name}-{self.sim}"
        return f"{self.kind}-{self.device_id}"


@dataclasses.dataclass(frozen=True)
class Unit:
    """What one lease takes: a device, or a source and its peer (destination)."""

    profile: str
    devices: tuple[InventoryDevice, ...]

    @property
    def device_ids(self) -> tuple[str, ...]:
        return tuple(d.device_id for d in self.devices)

    @property
    def label(self) -> str:
        return "+".join(d.name for d in self.devices)


@dataclasses.dataclass(frozen=True)
class Inventory:
    """The inventory file: its devices, the profiles they run, where leases live.

    Args:
        devices: the host's devices (see InventoryDevice).
        lease_dir: directory of the lease lock files (default /run/vfio-conform/leases; the
            environment variable VFIO_CONFORM_LEASE_DIR wins).
        lease_wait: seconds a worker waits for a device another run holds (default 0: none).
    """

    path: str
    devices: tuple[InventoryDevice, ...]
    profiles: dict[str, Profile]
    lease_dir: str = DEFAULT_LEASE_DIR
    lease_wait: float = DEFAULT_LEASE_WAIT

    def device(self, name: str) -> InventoryDevice:
        return next(d for d in self.devices if d.name == name)

    def units(self, profile: str | None = None) -> list[Unit]:
        """The lease units, in file order: each device with its peer, or alone."""
        peers = {d.peer for d in self.devices if d.peer}
        out = []
        for dev in self.devices:
            if dev.name in peers or (profile is not None and dev.profile_name != profile):
                continue
            pair = (dev, self.device(dev.peer)) if dev.peer else (dev,)
            out.append(Unit(dev.profile_name, pair))
        return out

    def profile_names(self) -> list[str]:
        return list(dict.fromkeys(d.profile_name for d in self.devices))


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory (ConfigError naming file, line and field); touches no device."""
    return build_inventory(read_marked(path, "inventory"))


def build_inventory(doc: Marked) -> Inventory:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("", "an inventory is a YAML mapping with a 'devices' list")
    _no_unknown(doc, "", data, ("devices", "lease_dir", "lease_wait"))
    items = _list(doc, "devices", data.get("devices"))
    if not items:
        raise doc.error("devices", "is required", "a list of devices, each with a name and a profile")
    base = Path(doc.path).parent
    profiles: dict[str, Profile] = {}
    devices: list[InventoryDevice] = []
    for i, item in enumerate(items):
        devices.append(_device(doc, f"devices.{i}", item, base, profiles))
    _check_unique(doc, devices)
    _check_peers(doc, devices)
    lease_dir = _str(doc, "lease_dir", data.get("lease_dir")) or DEFAULT_LEASE_DIR
    wait = _number(doc, "lease_wait", data.get("lease_wait", DEFAULT_LEASE_WAIT), 0, 86400)
    return Inventory(doc.path, tuple(devices), profiles, lease_dir, wait)


def _device(doc: Marked, field: str, item, base: Path, profiles: dict[str, Profile]) -> InventoryDevice:
    data = _map(doc, field, item, required=True)
    _no_unknown(doc, field, data, yaml_keys(InventoryDevice))
    name = _str(doc, f"{field}.name", data.get("name"), required=True)
    if not _NAME.fullmatch(name):
        raise doc.error(f"{field}.name", f"{name!r} must be letters, digits, '.', '_' or '-'")
    kinds = [k for k in ADDRESS_KINDS if k in data]
    if len(kinds) != 1:
        raise doc.error(field, f"device {name!r} needs exactly one address of: {', '.join(ADDRESS_KINDS)}"
                        + (f" (has {', '.join(kinds)})" if kinds else ""))
    kind = kinds[0]
    ref = _str(doc, f"{field}.profile", data.get("profile"), required=True)
    profile = _profile(doc, f"{field}.profile", ref, base, profiles)
    allow = _allow(doc, f"{field}.allow", data.get("allow"))
    values = dict(pci=None, mdev=None, socket=None, sim=None)
    if kind == "pci":
        if isinstance(data["pci"], (int, float)) and not isinstance(data["pci"], bool):
            raise doc.error(f"{field}.pci", f"YAML read this PCI address as the number {data['pci']!r}",
                            "quote it: pci: \"0000:3b:00.1\"")
        bdf = _str(doc, f"{field}.pci", data["pci"], required=True).strip().lower()
        if re.fullmatch(r"[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", bdf):
            bdf = "0000:" + bdf
        if not _BDF.fullmatch(bdf):
            raise doc.error(f"{field}.pci", f"{data['pci']!r} is not a PCI address (0000:3b:00.1)")
        values["pci"] = bdf
    elif kind == "mdev":
        values["mdev"] = _mdev(doc, f"{field}.mdev", data["mdev"])
    elif kind == "socket":
        sock = _str(doc, f"{field}.socket", data["socket"], required=True)
        values["socket"] = str((base / sock).resolve()) if not sock.startswith("/") else sock
    else:
        values["sim"] = _str(doc, f"{field}.sim", data["sim"], required=True)
    backend = {"pci": "kernel", "mdev": "kernel", "socket": "vfio-user", "sim": "sim"}[kind]
    if profile.backend != backend:
        raise doc.error(f"{field}.profile", f"profile {profile.name!r} uses backend {profile.backend!r}; "
                                            f"a {kind} device needs a {backend!r} profile")
    if kind == "sim" and values["sim"] not in profile.devices:
        raise doc.error(f"{field}.sim", f"sim device {values['sim']!r} is not defined by profile "
                                        f"{profile.name!r}", f"its devices are: {', '.join(profile.devices)}")
    driver = _str(doc, f"{field}.driver", data.get("driver"))
    if driver is not None and kind != "pci":
        raise doc.error(f"{field}.driver", "only a PCI device is bound to a driver by the harness")
    if kind == "pci" and driver is None:
        driver = "vfio-pci"
    if driver is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", driver):
        raise doc.error(f"{field}.driver", f"{driver!r} is not a driver name")
    if allow.bind and kind != "pci":
        raise doc.error(f"{field}.allow.bind", "only a PCI device can be bound by the harness")
    _check_allow(doc, field, profile, allow)
    return InventoryDevice(name=name, profile=ref, kind=kind, driver=driver,
                           peer=_str(doc, f"{field}.peer", data.get("peer")), allow=allow,
                           line=doc.line(field) or 0, profile_name=profile.name, **values)


def _profile(doc, field, ref: str, base: Path, profiles: dict[str, Profile]) -> Profile:
    if ref.endswith((".yaml", ".yml")) and not ref.startswith("/"):
        ref_path = base / ref
        ref = str(ref_path) if ref_path.exists() else ref
    try:
        profile = find_profile(ref)
    except ConfigError as exc:
        raise doc.error(field, str(exc)) from None
    known = profiles.get(profile.name)
    if known is not None and known.path != profile.path:
        raise doc.error(field, f"two different profiles are named {profile.name!r} "
                               f"({known.path} and {profile.path})")
    profiles[profile.name] = profile
    return profile


def _allow(doc, field, value) -> Allow:
    data = _map(doc, field, value)
    _no_unknown(doc, field, data, yaml_keys(Allow))
    base = Allow()
    return Allow(**{k: _bool(doc, f"{field}.{k}", data.get(k, getattr(base, k))) for k in yaml_keys(Allow)})


def _check_allow(doc, field, profile: Profile, allow: Allow) -> None:
    """A device may run its profile only if the profile needs nothing its permissions deny."""
    if not allow.reset and profile.reset:
        raise doc.error(f"{field}.allow.reset", f"profile {profile.name!r} declares features.reset: "
                                                f"true (the suites reset the device); this device "
                                                f"allows no reset", "use a profile with features.reset: false")
    writable = [p.name for p in profile.regions.policies if p.writable]
    if not allow.write_regions and writable:
        raise doc.error(f"{field}.allow.write_regions", f"profile {profile.name!r} writes region(s) "
                                                        f"{', '.join(writable)}; this device allows no "
                                                        f"region writes")


def _mdev(doc, field, value) -> MdevAddress:
    if isinstance(value, str):
        value = {"uuid": value}
    data = _map(doc, field, value, required=True)
    _no_unknown(doc, field, data, ("uuid", "parent", "type"))
    uuid = _str(doc, f"{field}.uuid", data.get("uuid"), required=True).strip().lower()
    if not _UUID.fullmatch(uuid):
        raise doc.error(f"{field}.uuid", f"{data['uuid']!r} is not an mdev UUID")
    return MdevAddress(uuid, _str(doc, f"{field}.parent", data.get("parent")),
                       _str(doc, f"{field}.type", data.get("type")))


def _check_unique(doc: Marked, devices: list[InventoryDevice]) -> None:
    names: dict[str, int] = {}
    keys: dict[str, str] = {}
    for i, dev in enumerate(devices):
        if dev.name in names:
            raise doc.error(f"devices.{i}.name", f"device name {dev.name!r} is used twice "
                                                 f"(first on line {devices[names[dev.name]].line})")
        names[dev.name] = i
        if dev.lease_key in keys:
            raise doc.error(f"devices.{i}.{dev.kind}", f"{dev.device_id} is listed twice "
                                                       f"({keys[dev.lease_key]!r} and {dev.name!r})")
        keys[dev.lease_key] = dev.name


def _check_peers(doc: Marked, devices: list[InventoryDevice]) -> None:
    by_name = {d.name: d for d in devices}
    taken: dict[str, str] = {}
    for i, dev in enumerate(devices):
        if dev.peer is None:
            continue
        field = f"devices.{i}.peer"
        other = by_name.get(dev.peer)
        if other is None:
            raise doc.error(field, f"no device named {dev.peer!r} in this inventory")
        if other.name == dev.name:
            raise doc.error(field, "a device cannot be its own peer")
        if other.profile_name != dev.profile_name:
            raise doc.error(field, f"peer {other.name!r} runs profile {other.profile_name!r}, not "
                                   f"{dev.profile_name!r}: a pair runs one profile")
        if other.peer is not None:
            raise doc.error(field, f"{other.name!r} has a peer itself: a pair is two devices")
        if dev.peer in taken:
            raise doc.error(field, f"{dev.peer!r} is already the peer of {taken[dev.peer]!r}")
        taken[dev.peer] = dev.name
