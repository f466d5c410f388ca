"""On every lab device, `vfio-conform profile new` writes a draft that, unedited, runs the suites
clean (no fail, no infra-error) against the device it was written from: the four mtty flag-set
variants (mdev guest), and edu, the ivshmem pair and an e1000 with its option ROM on vfio-pci.

VC_LAB_DRAFT_PYTEST_ARGS (e.g. "-k test_arc") narrows the suites for a quick look; CI runs them all.
"""
from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from vfio_conform.qemu_lab import LabSession
from vfio_conform.qemu_lab.config import DEFAULT_PCI_DEVICES, PciDeviceSpec
from vfio_conform.qemu_lab.modbuild import VARIANTS as BUILDS
from vfio_conform.profile import load_profile
from vfio_conform.uapi.enums import MigFlag

GUEST = Path(__file__).with_name("guest_drafts.py")
pytestmark = pytest.mark.lab
#: the four conformant flag-set builds (mtty, mtty_sc, mtty_p2p, mtty_pc); the bug builds are left out
VARIANTS = {n: v for n, v in BUILDS.items() if not v.bug}
#: the inherited waivers of the shipped mtty profiles (known deviations of the sample driver)
MTTY_WAIVED = {"resume.corrupt-header-refused", "dma.start-once", "dma.report-needs-start"}
PCI_DEVICES = DEFAULT_PCI_DEVICES + (PciDeviceSpec("e1000", "e1000rom"),)
EXTRA = shlex.split(os.environ.get("VC_LAB_DRAFT_PYTEST_ARGS", ""))
BOOT_TIMEOUT = 60 * 60


def _run(session: LabSession, tmp_path: Path) -> dict:
    argv = ["python3", str(GUEST), *(["--", *EXTRA] if EXTRA else [])]
    result = session.run(argv, timeout=BOOT_TIMEOUT, results_dir=tmp_path, stall_timeout=40 * 60)
    assert result.exit_code == 0, result.stderr[-3000:]
    assert result.kernel_warnings == []
    report = json.loads((tmp_path / "drafts.json").read_text())
    for group, entry in report.items():
        print(f"{group}: {entry.get('summary') or entry.get('new_stderr')}")
    return report


def _clean(group: str, entry: dict) -> None:
    assert entry["new_exit"] == 0, (group, entry["new_stderr"])
    summary = entry["summary"]
    assert entry["run_exit"] == 0, (group, entry["tail"], entry["stderr"])
    assert "finished" in summary and "pass=" in summary, (group, summary)
    assert "fail=" not in summary and "infra-error=" not in summary, (group, summary)


def test_mtty_variant_drafts_run_clean(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    loaded = VARIANTS                 # no bug build, so no guest killer (mtty_oops) either
    report = _run(lab(modules=tuple(loaded)), tmp_path)
    assert set(report) == set(loaded)
    for module, flags in ((n, v.flags) for n, v in loaded.items()):
        _clean(module, report[module])
        draft = load_profile(tmp_path / "drafts" / f"{module}.yaml")
        assert draft.backend == "kernel" and draft.protocol == "v2" and int(draft.flags) == flags
        assert draft.match.driver == module and draft.match.mdev_type == f"{module}-2"
        assert draft.dma_logging is True and draft.hazards == ()
        assert {k.rule for k in draft.known_issues} == MTTY_WAIVED
        assert all(p.access == "none" for p in draft.regions.policies)
        assert draft.regions.peer_layout == "same" and len(draft.devices) == 2
        assert "# REVIEW:" in (tmp_path / "drafts" / f"{module}.yaml").read_text()


def test_vfio_pci_drafts_run_clean(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    report = _run(lab(mode="pci", pci_devices=PCI_DEVICES), tmp_path)
    assert set(report) == {"edu0", "ivshmem", "e1000e0", "virtionet0", "e1000rom"}
    for group, entry in report.items():
        _clean(group, entry)
        draft = load_profile(tmp_path / "drafts" / f"{group}.yaml")
        assert draft.protocol == "none" and draft.flags == MigFlag(0) and draft.match.driver == "vfio-pci"
        assert all(p.access == "none" for p in draft.regions.policies)
    ivshmem = load_profile(tmp_path / "drafts" / "ivshmem.yaml")
    assert ivshmem.regions.peer_layout == "different" and ivshmem.regions.policy(2).size == 1 << 20
    edu = load_profile(tmp_path / "drafts" / "edu0.yaml")
    assert edu.regions.policy(0).size == 1 << 20 and edu.regions.policy(0).mmap is True
    for group, bar in (("e1000e0", "BAR3"), ("virtionet0", "BAR1")):     # the MSI-X tables, marked
        text = (tmp_path / "drafts" / f"{group}.yaml").read_text()
        assert f"#   virtualized {bar} [0x0, +" in text and "MSI-X table" in text, text
    rom = load_profile(tmp_path / "drafts" / "e1000rom.yaml").regions.policy(6)
    assert rom.size and rom.size > 0          # the option ROM is a region of its own
