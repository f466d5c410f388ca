"""Lab tests that boot QEMU (TCG): mtty variants, vfio-pci devices, failure handling."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vfio_conform.qemu_lab import LabError, LabSession

PROBE = Path(__file__).with_name("guest_probe.py")
pytestmark = pytest.mark.lab
ALL_VARIANTS = ("mtty", "mtty_sc", "mtty_p2p", "mtty_pc", "mtty_broken")
EXPECTED_FLAGS = {"mtty": 7, "mtty_sc": 1, "mtty_p2p": 3, "mtty_pc": 5, "mtty_broken": 7}


def test_mtty_variants_report_their_flags(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    session = lab(modules=ALL_VARIANTS)
    result = session.run(["python3", str(PROBE)], timeout=180, results_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.manifest["kernel"] == "6.12.117+deb12-amd64"
    assert result.device_ids == session.planned_devices()
    report = json.loads(result.stdout)
    for dev in result.manifest["devices"]:
        assert Path(dev["vfio_dev"]).name == str(dev["iommu_group"])
        assert dev["type"] == f"{dev['module']}-2" and dev["srcversion"]
        assert dev["variant_flags"] == EXPECTED_FLAGS[dev["module"]]
        assert (dev["variant_bug"] is not None) is (dev["module"] == "mtty_broken")
        got = report[dev["uuid"]]
        assert got["migration_flags"] == EXPECTED_FLAGS[dev["module"]], dev
        assert got["stop_copy_bytes"] == 96
        assert got["fd_on_stop_copy_to_stop"] is (dev["module"] == "mtty_broken")
    assert len(report) == 2 * len(ALL_VARIANTS)
    assert result.kernel_warnings == []
    assert "mtty_broken" in result.dmesg or "mdev" in result.dmesg


def test_vfio_pci_region_sizes(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    result = lab(mode="pci").run(["python3", str(PROBE)], timeout=180, results_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    by_role = {d["role"]: d for d in result.manifest["devices"]}
    assert {r: (d["vendor"], d["device"], d["driver"]) for r, d in by_role.items()} == {
        "edu0": ("0x1234", "0x11e8", "vfio-pci"),
        "ivshmem1m": ("0x1af4", "0x1110", "vfio-pci"),
        "ivshmem2m": ("0x1af4", "0x1110", "vfio-pci"),
        "e1000e0": ("0x8086", "0x10d3", "vfio-pci"),         # MSI-X table in BAR3
        "virtionet0": ("0x1af4", "0x1000", "vfio-pci")}      # MSI-X table in BAR1
    sizes = {v["role"]: (v["bar0"], v["bar2"]) for v in report.values() if v["role"] in (
        "edu0", "ivshmem1m", "ivshmem2m")}
    assert sizes == {"edu0": (1 << 20, 0), "ivshmem1m": (256, 1 << 20), "ivshmem2m": (256, 2 << 20)}
    assert len({d["iommu_group"] for d in by_role.values()}) == 5


def test_exit_code_and_output_come_back(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    # the store mirror's way of writing to the (uncached) results share: a journal-less SQLite file
    db = ("import sqlite3; db = sqlite3.connect('/vfio-lab/results/t.db'); "
          "db.execute('PRAGMA journal_mode=OFF'); db.execute('create table t(x)'); db.commit()")
    argv = ["sh", "-c", f'python3 -c "{db}" || exit 9; echo out; echo err >&2; pwd; exit 7']
    result = lab(instances=1).run(argv, timeout=120, results_dir=tmp_path)
    assert result.exit_code == 7, result.stderr
    assert (tmp_path / "t.db").stat().st_size > 0
    assert result.stdout.splitlines() == ["out", str(Path(__file__).resolve().parents[2])]
    assert result.stderr == "err\n"
    assert result.timings["command start"] < result.timings["total"]


def test_command_timeout_kills_qemu(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo suite::test_slow > $VFIO_LAB_PROGRESS; sleep 10000"]
    with pytest.raises(LabError) as info:
        lab(instances=1).run(argv, timeout=240, command_timeout=4, results_dir=tmp_path)
    assert info.value.kind == "timeout" and "command did not finish within 4s" in str(info.value)
    assert info.value.last_test == "suite::test_slow"


def test_kernel_panic_is_reported(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo suite::test_boom > $VFIO_LAB_PROGRESS; echo c > /proc/sysrq-trigger"]
    with pytest.raises(LabError) as info:
        lab(instances=1).run(argv, timeout=120, results_dir=tmp_path)
    assert info.value.kind == "kernel-crash"
    assert "Kernel panic" in str(info.value) and info.value.last_test == "suite::test_boom"


#: Opens edu through the harness and unbinds it from vfio-pci while holding it: the unbind waits for
#: its last user (this process) forever, and so does the guest's power-off after the command.
SELF_BLOCKING_UNBIND = """
from pathlib import Path
from vfio_conform.backends.kernel import open_kernel
edu = next(d for d in sorted(Path("/sys/bus/pci/devices").iterdir())
           if (d / "vendor").read_text().strip() == "0x1234" and (d / "device").read_text().strip() == "0x11e8")
held = open_kernel(edu.name)
(edu / "driver" / "unbind").write_text(edu.name)
"""


def test_a_power_off_that_never_comes_is_reported_with_the_blocked_removal(
        lab: Callable[..., LabSession], tmp_path: Path) -> None:
    """The command ends, but a device removal it left behind blocks the guest's power-off: a
    `poweroff` error naming the removal and the command's exit, not a kernel crash of a test."""
    script = tmp_path / "hold_and_unbind.py"
    script.write_text(SELF_BLOCKING_UNBIND)
    guest_path = f"/vfio-lab/results/{script.name}"     # the results directory, as the guest sees it
    argv = ["sh", "-c", f"python3 {guest_path} </dev/null >/dev/null 2>&1 & sleep 8; echo done >&2; exit 0"]
    with pytest.raises(LabError) as info:
        lab(mode="pci").run(argv, timeout=240, results_dir=tmp_path)
    assert info.value.kind == "poweroff", info.value
    message = str(info.value)
    assert "the command ended (exit 0)" in message and "blocked until released by user" in message, message
    assert "done" in message


def test_guest_death_before_command_is_retried_then_boot_error(
        lab: Callable[..., LabSession], tmp_path: Path) -> None:
    session = lab(extra_cmdline=("rdinit=/no-such-init",), boot_retries=1)
    with pytest.raises(LabError) as info:
        session.run(["true"], timeout=120, results_dir=tmp_path)
    assert info.value.kind == "boot" and "2 attempts" in str(info.value)
    assert (tmp_path / "console.attempt1.log").exists()


def test_variant_fsm_matrix_only_broken_misbehaves(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    matrix = Path(__file__).with_name("guest_matrix.py")
    result = lab(modules=ALL_VARIANTS, instances=1).run(["python3", str(matrix)], timeout=240,
                                                        results_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {m: r["flags"] for m, r in report.items()} == EXPECTED_FLAGS
    for module, r in report.items():
        if module == "mtty_broken":
            assert r["mismatches"] == ["3->1: got (0, True, 1) want (0, False, 1)"]
        else:
            assert r["mismatches"] == [], module
    assert result.kernel_warnings == []


def test_total_timeout_kills_a_guest_stuck_in_boot(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    with pytest.raises(LabError) as info:
        lab(instances=1).run(["true"], timeout=3, results_dir=tmp_path)
    assert info.value.kind == "timeout" and "guest did not finish within 3s" in str(info.value)


def test_missing_command_is_a_setup_error(lab: Callable[..., LabSession], tmp_path: Path) -> None:
    with pytest.raises(LabError) as info:
        lab(instances=1).run(["/no/such/harness"], timeout=120, results_dir=tmp_path)
    assert info.value.kind == "guest-setup" and "/no/such/harness" in str(info.value)
