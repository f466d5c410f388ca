"""What a fleet host exports to labgrid and the places the harness creates for it.

Each host runs a labgrid exporter that exports one resource group per lease unit of its inventory
(a device, or a device and its peer), named `vfio-<unit>`, with one `VfioDevice` resource per
device whose attributes are the device's address (PCI BDF, mdev UUID, vfio-user socket or sim
instance), kind, driver, profile and role (source/destination): what a lab's dashboard shows for
the resource. `places` creates one place per unit (`<host>-<unit>`) matching that group, tagged
`host=<host> profile=<profile> unit=<unit> driver=<driver> pci=<BDFs>` and commented with the
same in full, so the lab's `labgrid-client places` says what each place is.
"""
from __future__ import annotations

import re

import yaml

from ..hosts.inventory import Inventory, InventoryDevice, Unit
from .labgrid import LabgridClient

#: The resource class each device is exported as (a plain resource entry: no labgrid driver
#: uses it, its attributes describe the device).
RESOURCE_CLASS = "VfioDevice"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_TAG = re.compile(r"[^a-z0-9_]")
#: Tag of a place whose host needs recovery (a device operation hung); `fleet run` refuses it.
RECOVERY_TAG = "needs_recovery"


def group_name(unit: Unit) -> str:
    return "vfio-" + _SAFE.sub("_", unit.label)


def place_name(host: str, unit: Unit) -> str:
    return f"{_SAFE.sub('_', host)}-{_SAFE.sub('_', unit.label)}"


def tag_value(text: str) -> str:
    """A tag value labgrid accepts and matches exactly: lower case, digits and '_'."""
    return _TAG.sub("_", text.lower())


def unit_tags(host: str, unit: Unit) -> dict[str, str]:
    """The tags `fleet run` reserves a unit's place by (host, profile, unit)."""
    return {"host": tag_value(host), "profile": tag_value(unit.profile), "unit": tag_value(unit.label)}


def place_tags(host: str, unit: Unit) -> dict[str, str]:
    """unit_tags plus what the devices are: driver(s) and PCI addresses (as tag values)."""
    tags = unit_tags(host, unit)
    drivers = sorted({d.driver or unit_backend(d) for d in unit.devices})
    tags["driver"] = tag_value("+".join(drivers))
    pci = [d.pci for d in unit.devices if d.pci]
    if pci:
        tags["pci"] = tag_value("+".join(pci))
    return tags


def unit_backend(dev: InventoryDevice) -> str:
    return {"pci": "vfio-pci", "mdev": "mdev", "socket": "vfio-user", "sim": "sim"}[dev.kind]


def address(dev: InventoryDevice) -> str:
    return {"pci": f"pci:{dev.pci}", "mdev": f"mdev:{dev.device_id}", "socket": f"vfio-user:{dev.socket}",
            "sim": f"sim:{dev.sim}"}[dev.kind]


def place_comment(host: str, unit: Unit) -> str:
    """'vfio-conform lab17: mlx5 on cx7-a=pci:0000:3b:00.1 (mlx5_vfio_pci, source), ...'"""
    roles = ("source", "destination") if len(unit.devices) == 2 else ("device",)
    parts = [f"{d.name}={address(d)} ({d.driver or unit_backend(d)}, {role})"
             for d, role in zip(unit.devices, roles)]
    return f"vfio-conform {host}: profile {unit.profile} on {', '.join(parts)}"


def exporter_config(inventory: Inventory, address_of_host: str = "127.0.0.1") -> str:
    """The labgrid-exporter configuration: one group per lease unit, one resource per device."""
    groups = {}
    for unit in inventory.units():
        roles = ("source", "destination") if len(unit.devices) == 2 else ("device",)
        groups[group_name(unit)] = {
            "location": f"vfio-conform unit {unit.label} (profile {unit.profile})",
            **{_SAFE.sub("_", d.name): {"cls": RESOURCE_CLASS, "address": address(d), "kind": d.kind,
                                        "driver": d.driver or unit_backend(d), "profile": unit.profile,
                                        "role": role, "host": address_of_host}
               for d, role in zip(unit.devices, roles)}}
    return yaml.safe_dump(groups, sort_keys=False)


def ensure_place(client: LabgridClient, name: str, match: str, tags: dict[str, str], comment: str,
                 existing: dict[str, dict]) -> bool:
    """Create the place with its match unless it exists; set its tags and comment either way
    (a place of an older harness gets the device's description). True when created."""
    created = name not in existing
    if created:
        client("create", place=name)
    if created or match not in existing[name]["matches"]:
        client("add-match", match, place=name)
    client("set-tags", *(f"{k}={v}" for k, v in tags.items()), place=name)
    client("set-comment", comment, place=name)
    return created


def create_places(client: LabgridClient, inventory: Inventory, host: str) -> list[str]:
    """One place per unit of this host's inventory; the names of those created now."""
    made = []
    existing = client.places()
    for unit in inventory.units():
        name = place_name(host, unit)
        match = f"{_SAFE.sub('_', host)}/{group_name(unit)}/{RESOURCE_CLASS}"
        if ensure_place(client, name, match, place_tags(host, unit), place_comment(host, unit), existing):
            made.append(name)
    return made
