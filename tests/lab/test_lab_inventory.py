"""Lab: an inventory run binds QEMU's edu to vfio-pci from its original state and restores it,
after a finished run and after a run interrupted by SIGTERM."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vfio_conform.qemu_lab import LabSession

SCRIPT = Path(__file__).with_name("inventory_bind.py")
pytestmark = pytest.mark.lab


def test_inventory_binds_and_restores_vfio_pci_device(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    result = lab(mode="pci").run(["python3", str(SCRIPT)], timeout=900, results_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    unbound = {"driver": None, "override": "(null)"}
    assert report["before"] == unbound
    assert report["devices_check"]["rc"] == 0, report["devices_check"]
    assert "will-bind" in report["devices_check"]["stdout"]
    run = report["run"]
    assert run["rc"] == 0, run["tail"]
    assert run["during"] == {"driver": "vfio-pci", "override": "vfio-pci"}
    assert run["after"] == unbound, run["tail"]
    term = report["sigterm"]
    assert term["during"] == {"driver": "vfio-pci", "override": "vfio-pci"}, term["tail"]
    assert term["rc"] == 3 and "terminated" in term["tail"], term["tail"]
    assert term["after"] == unbound, term["tail"]


LEASE_SCRIPT = Path(__file__).with_name("inventory_lease.py")


def test_inventory_pairs_of_mtty_leased_by_workers(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    """Two mtty pairs of one profile: `-n auto` starts a worker per pair, each on its own lease, with
    the same results as one worker. Both wall times are printed (the speed-up depends on the host's
    free cores: the TCG guest's two vCPUs are host threads; 1.03x on a 2-core host at load 10)."""
    result = lab(modules=("mtty",), instances=4).run(["python3", str(LEASE_SCRIPT)], timeout=2400,
                                                       results_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    one, auto = report["one"], report["auto"]
    print(f"\narc suite on two mtty pairs: 1 worker {one['seconds']}s, -n auto {auto['seconds']}s "
          f"(speed-up {one['seconds'] / auto['seconds']:.2f}x)")
    assert report["instances"] == 4
    assert one["rc"] == 0 and auto["rc"] == 0, (one["tail"], auto["tail"])
    assert one["workers"] == ["gw0"] and auto["workers"] == ["gw0", "gw1"], auto["tail"]
    assert auto["groups"] == ["mtty#0", "mtty#1"]
    assert one["summary"] == auto["summary"] and "infra-error" not in auto["summary"][0]
