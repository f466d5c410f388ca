"""Running from an inventory: lease a device (or pair) per profile, bind it, health-check it, and
give everything back; and the host check behind `vfio-conform devices --inventory`.

In each process that runs tests (an xdist worker, or pytest alone) an `InventorySession` leases,
on the first test of a profile, the first free unit of that profile, binds its PCI functions to
the inventory's driver where it is allowed to, and health-checks each device. At the end of the
session (also after a failure, Ctrl-C or SIGTERM, and at interpreter exit) it restores every
driver it changed and releases its leases. Which driver a function had is also written beside its
lease (`<key>.bind`), so a killed worker's device is restored by whoever takes the lease next (the
run's controller sweeps them at its end).
"""
from __future__ import annotations

import atexit
import errno
import dataclasses
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from ..backends.kernel.bind import BindError, BindRecord, bind, current_driver, restore, sysfs_write
from ..backends.kernel.sysfs import resolve
from ..backends.registry import ROLES, role_of
from ..base.errors import ConfigError, InfraError
from ..results.outcomes import infra_error
from ..hosts.inventory import Inventory, InventoryDevice, Unit, load_inventory
from ..uapi.ioctl import number
from ..hosts.health import health_check
from ..hosts.leases import Lease, holder_of, holder_text, lease_dir, lease_one, try_lease
from ..base.interrupts import deferred, install_sigterm_if_default, raise_if_terminated

def bind_record_path(directory: Path, dev: InventoryDevice) -> Path:
    return directory / f"{dev.lease_key}.bind"


class InventorySession:
    """Leases, binds and health checks of one test process (registered as a pytest plugin)."""

    def __init__(self, inventory: Inventory, session: str, sysfs_root: str | Path = "/sys",
                 dev_root: str | Path = "/dev", write=sysfs_write):
        self.inventory = inventory
        self.session = session
        self.sysfs_root, self.dev_root, self.write = sysfs_root, dev_root, write
        self.directory = lease_dir(inventory.lease_dir)
        self.held: dict[str, tuple[Unit, Lease]] = {}
        self.binds: list[tuple[InventoryDevice, BindRecord]] = []
        self.failed: dict[str, str] = {}
        self.restore_errors: list[str] = []
        self._lock = threading.Lock()
        self._atexit = False

    # -- what the device pool asks ---------------------------------------------------------
    def device_ids(self, profile) -> tuple[str, ...]:
        """The ids of this process's unit of `profile` (leased, bound and checked on first use)."""
        if profile.name in self.failed:
            infra_error(self.failed[profile.name])
        if profile.name not in self.held:
            try:
                self.acquire(profile)
            except InfraError as exc:
                self.failed[profile.name] = str(exc)
                infra_error(str(exc))
        return self.held[profile.name][0].device_ids

    def unit(self, profile_name: str) -> Unit | None:
        held = self.held.get(profile_name)
        return held[0] if held else None

    def acquire(self, profile) -> Unit:
        units = self.inventory.units(profile.name)
        if not units:
            raise InfraError(f"the inventory names no device for profile {profile.name}")
        index, lease = lease_one(self.directory, [tuple(d.lease_key for d in u.devices) for u in units],
                                 holder_text(self.session), self.inventory.lease_wait)
        unit = units[index]
        self.held[profile.name] = (unit, lease)
        if not self._atexit:
            atexit.register(self.release)
            self._atexit = True
        for dev in unit.devices:
            self._prepare(dev)
        for i, dev in enumerate(unit.devices):
            why = health_check(profile, dev.device_id, role_of(i), dev.allow.reset)
            if why is not None:
                raise InfraError(f"{dev.name}: {why}")
        return unit

    def _prepare(self, dev: InventoryDevice) -> None:
        """The device is present and on its driver (bound here when allowed), or InfraError."""
        if dev.kind == "pci":
            self._bind(dev)
        elif dev.kind == "mdev":
            problem = _mdev_problem(dev, self.sysfs_root, self.dev_root)
            if problem:
                raise InfraError(f"{dev.name}: {problem}")
        elif dev.kind == "socket" and not os.path.exists(dev.socket):
            raise InfraError(f"{dev.name}: no vfio-user server socket {dev.socket}")

    def _bind(self, dev: InventoryDevice) -> None:
        bdf = dev.pci
        if not (Path(self.sysfs_root) / "bus" / "pci" / "devices" / bdf).exists():
            raise InfraError(f"{dev.name}: PCI device {bdf} is not on this host")
        now = current_driver(bdf, self.sysfs_root)
        stale = _read_record(bind_record_path(self.directory, dev))
        if stale is not None and now == stale.target == dev.driver:
            self.binds.append((dev, stale))        # a killed run left it bound: restore its original
            return
        if stale is not None:
            bind_record_path(self.directory, dev).unlink(missing_ok=True)   # overtaken by a rebind
        if now == dev.driver:
            return
        if not dev.allow.bind:
            raise InfraError(f"{dev.name}: {bdf} is bound to {now or 'no driver'}, not {dev.driver}, "
                             f"and its inventory entry does not allow binding (allow.bind: false)")
        install_sigterm_if_default()   # a worker sent SIGTERM unwinds too, so its drivers are restored
        # bound, recorded on disk and listed for release as one step: a SIGTERM arriving in between
        # would leave the device on the new driver with nothing to restore it from; it waits here
        with deferred():
            try:
                record = bind(bdf, dev.driver, self.sysfs_root, self.write)
            except BindError as exc:
                raise InfraError(f"{dev.name}: {exc}") from None
            _write_record(bind_record_path(self.directory, dev), record)
            self.binds.append((dev, record))
        raise_if_terminated()

    def pytest_vc_device_opened(self, device, profile, role: str) -> None:
        """A device whose inventory entry forbids reset gets a transport that refuses it (EPERM)."""
        unit = self.unit(profile.name)
        index = ROLES.index(role) if role in ROLES else None
        if unit is not None and index is not None and index < len(unit.devices) \
                and not unit.devices[index].allow.reset:
            device.transport = NoReset(device.transport)

    # -- giving back -----------------------------------------------------------------------
    def release(self) -> None:
        """Restore every driver this process changed, then drop its leases (idempotent)."""
        with self._lock:
            while self.binds:
                dev, record = self.binds.pop()
                try:
                    _said_closed(dev.name, restore(record, self.sysfs_root, self.write))
                except BindError as exc:
                    self.restore_errors.append(f"{dev.name}: {exc}")
                    print(f"vfio-conform: could not restore {dev.name}: {exc}", file=sys.stderr)
                    continue
                bind_record_path(self.directory, dev).unlink(missing_ok=True)
            for _, lease in self.held.values():
                lease.release()
            self.held.clear()

    @pytest.hookimpl(trylast=True)     # after the session's fixtures (the device pool) are torn down
    def pytest_sessionfinish(self, session) -> None:
        self.release()
        if not hasattr(session.config, "workerinput"):
            self.restore_errors += sweep(self.inventory, self.sysfs_root, self.write)

    # -- xdist -----------------------------------------------------------------------------
    def group(self, profile_name: str, index: int) -> str:
        """The xdist group of a profile's `index`-th test: one group per unit, so `-n` units run at once."""
        count = len(self.inventory.units(profile_name))
        return profile_name if count <= 1 else f"{profile_name}#{index % count}"


class NoReset:
    """A device's transport that refuses VFIO_DEVICE_RESET itself (EPERM), never passing it on."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def ioctl(self, fd, request, buf=None):
        if request == _RESET:
            raise OSError(errno.EPERM, "VFIO_DEVICE_RESET not issued: the inventory does not allow "
                                       "resetting this device (allow.reset: false)")
        return self._inner.ioctl(fd, request, buf)


def sweep(inventory: Inventory, sysfs_root: str | Path = "/sys", write=sysfs_write) -> list[str]:
    """Restore drivers that dead processes left bound (their lease is free again); the errors.

    A record whose lease is held belongs to a live process (another run, or a worker still
    tearing down): it is left to that process."""
    directory = lease_dir(inventory.lease_dir)
    errors = []
    for dev in inventory.devices:
        path = bind_record_path(directory, dev)
        record = _read_record(path)
        if record is None:
            continue
        try:
            lease = try_lease(directory, (dev.lease_key,), holder_text("sweep"))
        except InfraError as exc:
            errors.append(f"{dev.name}: not restored: {exc}")
            continue
        if lease is None:
            continue
        try:
            _said_closed(dev.name, restore(record, sysfs_root, write))
            path.unlink(missing_ok=True)
        except BindError as exc:
            errors.append(f"{dev.name}: {exc}")
        finally:
            lease.release()
    for line in errors:
        print(f"vfio-conform: could not restore {line}", file=sys.stderr)
    return errors


def _said_closed(name: str, closed: list[str]) -> None:
    """One line when the run had left something of the device open (closed before the unbind)."""
    if closed:
        print(f"vfio-conform: {name}: closed {', '.join(closed)} the run had left open, before giving "
              f"it back to its driver", file=sys.stderr)


def _read_record(path: Path) -> BindRecord | None:
    try:
        return BindRecord.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(path: Path, record: BindRecord) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_dict()))
    os.replace(tmp, path)


def _mdev_problem(dev: InventoryDevice, sysfs_root, dev_root) -> str | None:
    try:
        loc = resolve(dev.mdev.uuid, sysfs_root, dev_root)
    except ConfigError as exc:
        return f"missing: {exc.message}"
    if dev.mdev.type and loc.mdev_type != dev.mdev.type:
        return f"mdev {dev.mdev.uuid} is of type {loc.mdev_type}, not {dev.mdev.type}"
    parent = Path(loc.sysfs_path).parent.name if loc.sysfs_path else None
    if dev.mdev.parent and parent != dev.mdev.parent:
        return f"mdev {dev.mdev.uuid} is on parent {parent}, not {dev.mdev.parent}"
    return None


_RESET = number("VFIO_DEVICE_RESET")


# -- the host check ------------------------------------------------------------------------------

#: States of `vfio-conform devices --inventory`; the first two let a run use the device.
READY, WILL_BIND, MISSING, WRONG_DRIVER, LEASED, IN_USE = (
    "ready", "will-bind", "missing", "wrong-driver", "leased", "in-use")


@dataclasses.dataclass(frozen=True)
class DeviceStatus:
    """One inventory device as found on the host."""

    device: InventoryDevice
    state: str
    detail: str

    @property
    def usable(self) -> bool:
        return self.state in (READY, WILL_BIND)


def check_host(inventory: Inventory, sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev",
               proc_root: str | Path = "/proc") -> list[DeviceStatus]:
    """Each device's state on this host (nothing is opened, bound or leased)."""
    directory = lease_dir(inventory.lease_dir)
    users = _open_nodes(Path(proc_root))
    out = []
    for dev in inventory.devices:
        out.append(_status(dev, directory, users, sysfs_root, dev_root))
    return out


def _status(dev, directory, users, sysfs_root, dev_root) -> DeviceStatus:
    holder = holder_of(directory, dev.lease_key) if directory.is_dir() else None
    if dev.kind == "sim":
        return DeviceStatus(dev, LEASED, f"leased by {holder}") if holder else \
            DeviceStatus(dev, READY, "sim instance")
    if dev.kind == "socket":
        if not os.path.exists(dev.socket):
            return DeviceStatus(dev, MISSING, f"no vfio-user server socket {dev.socket}")
    else:
        try:
            loc = resolve(dev.device_id, sysfs_root, dev_root)
        except ConfigError as exc:
            return DeviceStatus(dev, MISSING, exc.message)
        if dev.kind == "mdev":
            problem = _mdev_problem(dev, sysfs_root, dev_root)
            if problem:
                return DeviceStatus(dev, MISSING, problem)
    if holder:
        return DeviceStatus(dev, LEASED, f"leased by {holder}")
    if dev.kind == "socket":
        return DeviceStatus(dev, READY, f"socket {dev.socket}")
    nodes = [n for n in (loc.group_path, loc.cdev_path) if n]
    using = sorted({who for node in nodes for who in users.get(node, ())})
    if using:
        return DeviceStatus(dev, IN_USE, f"open by {', '.join(using)} ({', '.join(nodes)})")
    if dev.kind == "pci" and loc.driver != dev.driver:
        if dev.allow.bind:
            return DeviceStatus(dev, WILL_BIND, f"bound to {loc.driver or 'no driver'}; a run binds it "
                                                f"to {dev.driver} and restores it")
        return DeviceStatus(dev, WRONG_DRIVER, f"bound to {loc.driver or 'no driver'}, not {dev.driver} "
                                               f"(allow.bind: false)")
    return DeviceStatus(dev, READY, f"driver {loc.driver or '-'}")


def _open_nodes(proc: Path) -> dict[str, set[str]]:
    """/dev/vfio node path -> {'pid N (comm)'} of the other processes that hold it open."""
    found: dict[str, set[str]] = {}
    me = os.getpid()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit() and int(p) != me]
    except OSError:
        return found
    for pid in pids:
        fd_dir = proc / pid / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(fd_dir / name)
            except OSError:
                continue
            if "/vfio/" in target:
                try:
                    comm = (proc / pid / "comm").read_text().strip()
                except OSError:
                    comm = "?"
                found.setdefault(target, set()).add(f"pid {pid} ({comm})")
    return found


def print_host_check(path: str, sysfs_root: str = "/sys", proc_root: str = "/proc") -> int:
    """`vfio-conform devices --inventory FILE`: 0 when every device can run, 1 otherwise."""
    inventory = load_inventory(path)
    statuses = check_host(inventory, sysfs_root, "/dev", proc_root)
    for st in statuses:
        dev = st.device
        print(f"{dev.name:16} {dev.kind:6} {dev.device_id:38} profile={dev.profile_name:16} "
              f"{st.state:12} {st.detail}")
    bad = [s for s in statuses if not s.usable]
    units = len(inventory.units())
    print(f"{len(statuses) - len(bad)} of {len(statuses)} devices usable; {units} lease unit(s) "
          f"(`run --inventory {path} -n auto` runs {units} worker(s))")
    return 1 if bad else 0


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` with an inventory: one worker per lease unit (device or pair)."""
    path = config.getoption("vc_inventory", None)
    if not path:
        return None
    try:
        inventory = load_inventory(path)
    except ConfigError:
        return None          # reported as a usage error by pytest_configure
    names = config.getoption("vc_profile") or inventory.profile_names()
    return max(1, sum(len(inventory.units(n)) for n in names))
