"""The real consumer in the lab: QEMU 10 (Debian trixie chroot) migrates a VM with stock mtty.

On Debian's 6.12 kernel (no CONFIG_IOMMUFD_DRIVER) QEMU's default options fail in DMA logging
REPORT, and the lane must say that the cause is the kernel's configuration; with
x-device-dirty-page-tracking=off the migration completes and the scratch register arrives.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from vfio_conform.qemu_lab.consumers import run_consumers
from vfio_conform.results import ResultStore

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent


def test_qemu_migrates_mtty_only_without_device_dirty_tracking(qemu_chroot_possible, tmp_path: Path) -> None:
    t0 = time.monotonic()
    run = run_consumers(["mtty"], tmp_path)
    print(f"\nconsumer lane on mtty: {time.monotonic() - t0:.1f}s")
    (verdict,) = run.verdicts
    assert run.qemu.startswith("QEMU emulator version 10."), run.qemu
    default, workaround, dma, converges = verdict.records
    # default options: QEMU's own error text, cause: the kernel's configuration
    assert default.test_id == "consumer_qemu_migrate[mtty:default]"
    assert default.outcome.value == "known-issue", default
    assert "Failed to get DMA logging report" in default.message and "Operation not supported" in default.message
    assert "cause: kernel configuration" in default.message and "CONFIG_IOMMUFD_DRIVER" in default.message
    # the workaround: the migration completes and the register value arrives
    assert workaround.test_id == "consumer_qemu_migrate[mtty:x-device-dirty-page-tracking=off]"
    assert workaround.outcome.value == "pass", workaround
    assert "scratch register 0xa5 arrived on the destination" in workaround.message
    assert dma.outcome.value == "known-issue" and "QEMU needs x-device-dirty-page-tracking=off" in dma.message
    # QEMU asked the device's exact pending size (MIG_DATA_SIZE: 96 bytes) and switched over
    assert converges.test_id == "consumer_qemu_converges[mtty:x-device-dirty-page-tracking=off]"
    assert converges.outcome.value == "pass" and "stop-copy size 96" in converges.message, converges
    assert run.exit_code == 0
    # recorded beside the suites' runs, as its own profile
    store = ResultStore(tmp_path / "results.sqlite")
    (stored,) = store.runs()
    assert stored["profile"] == "mtty@qemu" and stored["status"] == "finished"
    rows = {r["test_id"]: r for r in store.results(stored["id"])}
    assert rows["consumer_qemu_migrate[mtty:default]"]["rule"] == "consumer.qemu-real-migration"
    assert (run.run_dir / "consumers.md").read_text().count("cause: kernel configuration") >= 1


def test_qemu_refuses_to_migrate_plain_vfio_pci(qemu_chroot_possible, tmp_path: Path) -> None:
    """edu on vfio-pci (no variant driver): QEMU's own refusal, recorded as not-supported."""
    run = run_consumers(["qemu-edu"], tmp_path)
    (verdict,) = run.verdicts
    (rec,) = verdict.records
    assert rec.outcome.value == "not-supported", rec
    assert "VFIO migration is not supported" in rec.message and "variant driver" in rec.message
    assert run.exit_code == 0


def test_a_driver_that_loses_state_fails(qemu_chroot_possible, tmp_path: Path) -> None:
    """mtty_lossy resumes without loading the ports: QEMU migrates, the register does not arrive."""
    run = run_consumers([str(HERE / "profiles" / "mtty-lossy.yaml")], tmp_path)
    (verdict,) = run.verdicts
    default, workaround, _dma, _converges = verdict.records
    assert default.outcome.value == "known-issue"                 # the kernel stops QEMU first
    assert workaround.outcome.value == "fail", workaround
    assert "reads 0x00, the source wrote 0xa5" in workaround.message and "cause: driver" in workaround.message
    assert "[cause: driver]" in verdict.summary
    assert run.exit_code == 1
