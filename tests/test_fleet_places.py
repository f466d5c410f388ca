"""What a fleet host tells labgrid about its devices (no coordinator needed): the exported
resources carry each device's address, driver, profile and role; the places' tags and comment
name the PCI addresses, driver and profile; what `fleet run` reserves by."""
from __future__ import annotations

import yaml

from vfio_conform.fleet.booking import requests_for
from vfio_conform.fleet.labgrid import describe_holders
from vfio_conform.fleet.places import exporter_config, place_comment, place_name, place_tags, unit_tags
from vfio_conform.hosts.inventory import load_inventory

INVENTORY = """devices:
  - {name: cx7-a, pci: "0000:3b:00.1", profile: mlx5_vfio_pci, driver: mlx5_vfio_pci, peer: cx7-b}
  - {name: cx7-b, pci: "0000:3b:00.2", profile: mlx5_vfio_pci, driver: mlx5_vfio_pci}
  - {name: s0, sim: sim0, profile: sim-p2p}
"""


def _inventory(tmp_path):
    path = tmp_path / "lab17.yaml"
    path.write_text(INVENTORY)
    return load_inventory(str(path))


def test_exported_resources_describe_each_device(tmp_path):
    doc = yaml.safe_load(exporter_config(_inventory(tmp_path), "10.0.0.17"))
    pair = doc["vfio-cx7-a_cx7-b"]
    assert pair["cx7-a"] == {"cls": "VfioDevice", "address": "pci:0000:3b:00.1", "kind": "pci",
                             "driver": "mlx5_vfio_pci", "profile": "mlx5_vfio_pci", "role": "source",
                             "host": "10.0.0.17"}
    assert pair["cx7-b"]["role"] == "destination" and pair["cx7-b"]["address"] == "pci:0000:3b:00.2"
    assert "mlx5_vfio_pci" in pair["location"]
    assert doc["vfio-s0"]["s0"]["address"] == "sim:sim0" and doc["vfio-s0"]["s0"]["role"] == "device"
    assert "NetworkService" not in str(doc)


def test_place_tags_and_comment_name_the_devices(tmp_path):
    pair, sim = _inventory(tmp_path).units()
    assert place_name("lab17", pair) == "lab17-cx7-a_cx7-b"
    assert place_tags("Lab17", pair) == {"host": "lab17", "profile": "mlx5_vfio_pci", "unit": "cx7_a_cx7_b",
                                         "driver": "mlx5_vfio_pci", "pci": "0000_3b_00_1_0000_3b_00_2"}
    assert "pci" not in place_tags("lab17", sim) and place_tags("lab17", sim)["driver"] == "sim"
    assert place_comment("lab17", pair) == (
        "vfio-conform lab17: profile mlx5_vfio_pci on cx7-a=pci:0000:3b:00.1 (mlx5_vfio_pci, source), "
        "cx7-b=pci:0000:3b:00.2 (mlx5_vfio_pci, destination)")


def test_what_fleet_run_reserves(tmp_path):
    units = _inventory(tmp_path).units()
    own = requests_for(units, "lab17")
    assert [r.filters for r in own] == [unit_tags("lab17", u) for u in units] and all(len(r.units) == 1 for r in own)
    (by_name,) = requests_for(units, "lab17", place="rack7-srv3")
    assert by_name.filters == {"name": "rack7-srv3"} and by_name.units == tuple(units)
    (by_tag,) = requests_for(units, "lab17", tags={"rack": "r7"})
    assert by_tag.filters == {"rack": "r7"}
    (by_token,) = requests_for(units, "lab17", place="ignored", token="ABC123")
    assert by_token.token == "ABC123" and by_token.filters == {}


def test_holders_are_named():
    places = {"lab17-a": {"tags": {"host": "lab17", "unit": "a"}, "acquired": "lab17/ann", "reservation": None},
              "lab17-b": {"tags": {"host": "lab17", "unit": "b"}, "acquired": None, "reservation": "TOK"},
              "lab18-a": {"tags": {"host": "lab18", "unit": "a"}, "acquired": None, "reservation": None}}
    assert describe_holders(places, {"host": "lab17"}) == \
        "lab17-a (acquired by lab17/ann), lab17-b (allocated to another reservation)"
    assert describe_holders(places, {"name": "lab18-a"}) == "lab18-a (free)"
    assert describe_holders(places, {"host": "lab99"}) == "no place matches host=lab99"
