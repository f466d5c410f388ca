"""A fleet of lab hosts booked through labgrid: places, tags and reservations on its coordinator.

Each host runs a labgrid exporter that exports one resource group per lease unit of its inventory
(a device, or a device and its peer), named `vfio-<unit>`. `places` creates one labgrid place per
unit on the coordinator (`<host>-<unit>`), tagged `host=<host> profile=<profile> unit=<unit>`.
`book` reserves and acquires the places of one host through labgrid's own client
(`labgrid-client reserve`, `acquire`, `release`, `cancel-reservation`), so a lab's existing
users, reservations and tooling see the harness as one more user. A booked run then runs the
booked units from the host's inventory, writing to the shared store (PostgreSQL).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import yaml

from ..errors import ConfigError, InfraError
from ..profile.inventory import Inventory, Unit

#: The labgrid-client command (an installed `labgrid-client`, or this env variable's command line).
CLIENT_ENV = "VFIO_CONFORM_LABGRID_CLIENT"
#: The resource class each unit is exported as (a plain network resource: no hardware driver).
RESOURCE_CLASS = "NetworkService"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def group_name(unit: Unit) -> str:
    return "vfio-" + _SAFE.sub("_", unit.label)


def place_name(host: str, unit: Unit) -> str:
    return f"{_SAFE.sub('_', host)}-{_SAFE.sub('_', unit.label)}"


def unit_tags(host: str, unit: Unit) -> dict[str, str]:
    return {"host": _SAFE.sub("_", host), "profile": _SAFE.sub("_", unit.profile),
            "unit": _SAFE.sub("_", unit.label)}


def exporter_config(inventory: Inventory, address: str = "127.0.0.1") -> str:
    """The labgrid-exporter configuration: one group per lease unit of the inventory."""
    groups = {group_name(u): {RESOURCE_CLASS: {"address": address, "username": "root"}}
              for u in inventory.units()}
    return yaml.safe_dump(groups, sort_keys=False)


@dataclasses.dataclass(frozen=True)
class Booking:
    """A reservation (token) and the places it acquired, with the inventory units behind them."""

    token: str
    places: tuple[str, ...]
    units: tuple[Unit, ...]


class LabgridClient:
    """labgrid-client against one coordinator (every call time-limited; failures are InfraError)."""

    def __init__(self, coordinator: str, command: list[str] | None = None, timeout: float = 60.0):
        self.coordinator = coordinator
        self.command = command or client_command()
        self.timeout = timeout

    def __call__(self, *args: str, place: str | None = None, check: bool = True) -> str:
        argv = [*self.command, "-x", self.coordinator, *(["-p", place] if place else []), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise InfraError(f"labgrid-client {' '.join(args)} did not answer within "
                             f"{self.timeout:.0f}s (coordinator {self.coordinator})") from None
        if check and done.returncode != 0:
            why = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise InfraError(f"labgrid-client {' '.join(args)} failed: {why[-1] if why else done.returncode}")
        return done.stdout

    def places(self) -> list[str]:
        return [line.split()[0] for line in self("places").splitlines() if line.strip()]

    def ensure_place(self, name: str, match: str, tags: dict[str, str]) -> bool:
        """Create the place with its match and tags unless it exists; True when created."""
        if name in self.places():
            return False
        self("create", place=name)
        self("add-match", match, place=name)
        self("set-tags", *(f"{k}={v}" for k, v in tags.items()), place=name)
        return True

    def reserve(self, tags: dict[str, str]) -> str:
        """A reservation of one place with these tags, waited for; its token."""
        out = self("reserve", "--wait", "--shell", *(f"{k}={v}" for k, v in sorted(tags.items())))
        found = re.search(r"LG_TOKEN=(\S+)", out)
        if not found:
            raise InfraError(f"labgrid-client reserve printed no token: {out.strip()[:200]}")
        return found.group(1)

    def acquire(self, token: str) -> str:
        out = self("acquire", place=f"+{token}")
        found = re.search(r"acquired place (\S+)", out)
        if not found:
            raise InfraError(f"labgrid-client acquire printed no place: {out.strip()[:200]}")
        return found.group(1)

    def release(self, token: str) -> None:
        self("release", place=f"+{token}", check=False)
        self("cancel-reservation", token, check=False)


def client_command() -> list[str]:
    """How to run labgrid-client: $VFIO_CONFORM_LABGRID_CLIENT, or the installed command."""
    if os.environ.get(CLIENT_ENV):
        return os.environ[CLIENT_ENV].split()
    found = shutil.which("labgrid-client")
    if found:
        return [found]
    raise ConfigError("labgrid-client not found",
                      hint=f"pip install labgrid, or set ${CLIENT_ENV} to its command line")


def create_places(client: LabgridClient, inventory: Inventory, host: str) -> list[str]:
    """One place per unit of this host's inventory; the names of those created now."""
    made = []
    for unit in inventory.units():
        name = place_name(host, unit)
        if client.ensure_place(name, f"{_SAFE.sub('_', host)}/{group_name(unit)}/{RESOURCE_CLASS}",
                               unit_tags(host, unit)):
            made.append(name)
    return made


@contextlib.contextmanager
def book(client: LabgridClient, inventory: Inventory, host: str, profiles: list[str] | None = None):
    """Reserve and acquire every unit of `host` (of `profiles`, if given); released on exit."""
    tokens, places, units = [], [], []
    try:
        for unit in inventory.units():
            if profiles and unit.profile not in profiles:
                continue
            token = client.reserve(unit_tags(host, unit))
            tokens.append(token)
            places.append(client.acquire(token))
            units.append(unit)
        yield Booking(" ".join(tokens), tuple(places), tuple(units))
    finally:
        for token in tokens:
            client.release(token)


def booked_inventory(inventory: Inventory, booking: Booking, directory: Path) -> Path:
    """An inventory file holding only the booked units (profiles by absolute path)."""
    names = {d.name for u in booking.units for d in u.devices}
    devices = []
    for dev in inventory.devices:
        if dev.name not in names:
            continue
        entry = {"name": dev.name, "profile": inventory.profiles[dev.profile_name].path}
        if dev.kind == "mdev":
            entry["mdev"] = {k: v for k, v in dataclasses.asdict(dev.mdev).items() if v is not None}
        else:
            entry[dev.kind] = getattr(dev, dev.kind)
        if dev.driver and dev.kind == "pci":
            entry["driver"] = dev.driver
        if dev.peer:
            entry["peer"] = dev.peer
        entry["allow"] = dataclasses.asdict(dev.allow)
        devices.append(entry)
    path = directory / "booked-inventory.yaml"
    path.write_text(yaml.safe_dump({"lease_dir": inventory.lease_dir, "lease_wait": inventory.lease_wait,
                                    "devices": devices}, sort_keys=False))
    return path


def run_booked(coordinator: str, inventory_path: str, host: str, run_args: list[str],
               profiles: list[str] | None = None, workdir: Path | None = None) -> int:
    """Book this host's units, run them (`vfio-conform run --inventory`), release; the run's exit code."""
    from ..profile.inventory import load_inventory
    inventory = load_inventory(inventory_path)
    client = LabgridClient(coordinator)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="vc-fleet-"))
    with book(client, inventory, host, profiles) as booking:
        if not booking.units:
            raise ConfigError(f"no unit of {inventory_path} runs profile(s) {', '.join(profiles or [])}")
        print(f"vfio-conform fleet: {host}: booked {', '.join(booking.places)} "
              f"(reservation {booking.token})", flush=True)
        path = booked_inventory(inventory, booking, Path(workdir))
        env = dict(os.environ, VFIO_CONFORM_HOST=host)
        argv = [sys.executable, "-m", "vfio_conform", "run", "--inventory", str(path), *run_args]
        return subprocess.run(argv, env=env).returncode
