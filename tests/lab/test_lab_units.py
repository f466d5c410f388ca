"""Fast lab unit tests: no download, no boot."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vfio_conform.qemu_lab import LabConfig, LabError, LabSession
from vfio_conform.qemu_lab.modbuild import VARIANTS, _replace_once
from vfio_conform.qemu_lab.qemu import build_argv, pci_bdf
from vfio_conform.qemu_lab.shares import plan_view, stage_etc
from vfio_conform.qemu_lab.session import CRASH_PATTERNS, WARN_PATTERN, _last_test


def _argv(config: LabConfig, tmp_path: Path) -> list[str]:
    view = plan_view([Path(__file__).resolve().parents[2], sys.prefix])
    return build_argv(config, Path("/k/vmlinuz"), Path("/k/initrd"), tmp_path, tmp_path / "c.log",
                      view.shares)


def test_mdev_argv_has_timeout_safety_and_shares(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vfio_conform.qemu_lab.qemu.require_tool", lambda name: f"/usr/bin/{name}")
    argv = _argv(LabConfig(), tmp_path)
    cmdline = argv[argv.index("-append") + 1]
    for word in ("panic=-1", "oops=panic", "softlockup_panic=1", "console=ttyS0"):
        assert word in cmdline.split()
    assert "-no-reboot" in argv and "intel-iommu,intremap=on" not in argv
    shares = [argv[i + 1] for i, a in enumerate(argv) if a == "-virtfs"]
    assert not any("path=/," in s for s in shares)           # never the host's root
    assert any("path=/usr," in s and "readonly=on" in s for s in shares)
    assert any(f"path={sys.prefix}," in s and "readonly=on" in s for s in shares)
    assert any(f"path={tmp_path}," in s and "readonly" not in s for s in shares)
    assert argv[argv.index("-sandbox") + 1].startswith("on,obsolete=deny,elevateprivileges=")
    assert argv[argv.index("-sandbox") + 1].endswith("spawn=deny,resourcecontrol=deny")
    if os.geteuid() == 0:        # QEMU drops root after the set-up and chroots into an empty dir
        assert "-runas" in argv or "-run-with" in argv


def test_guest_view_never_shares_the_root_and_skips_nested(tmp_path: Path) -> None:
    from vfio_conform.qemu_lab.errors import LabError
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib64").mkdir()
    (tmp_path / "repo" / "tests").mkdir(parents=True)
    view = plan_view([tmp_path / "repo", tmp_path / "repo" / "tests", tmp_path / "usr" / "lib"],
                     root=tmp_path)
    assert [s.path for s in view.shares] == [str(tmp_path / n) for n in ("lib64", "repo", "usr")]
    assert view.links == (("bin", "usr/bin"),)
    assert "LAB_SHARES='ro0=" in view.boot_env() and "LAB_LINKS='bin=usr/bin'" in view.boot_env()
    with pytest.raises(LabError, match="root directory"):
        plan_view([tmp_path], root=tmp_path)
    with pytest.raises(LabError, match="spaces"):
        (tmp_path / "a b").mkdir()
        plan_view([tmp_path / "a b"], root=tmp_path)


def test_guest_etc_has_no_secrets(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "shadow", "ld.so.cache"):
        (etc / name).write_text(name)
    (etc / "ssh").mkdir()
    (etc / "os-release").symlink_to("../usr/lib/os-release")
    stage_etc(tmp_path / "guest", etc)
    assert sorted(p.name for p in (tmp_path / "guest").iterdir()) == ["ld.so.cache", "os-release", "passwd"]


def test_pci_argv_puts_iommu_before_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vfio_conform.qemu_lab.qemu.require_tool", lambda name: f"/usr/bin/{name}")
    argv = _argv(LabConfig(mode="pci"), tmp_path)
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert devices[0] == "intel-iommu,intremap=on"
    assert devices[1].startswith("edu,") and "addr=0x10" in devices[1]
    assert "intel_iommu=on" in argv[argv.index("-append") + 1]
    objects = [argv[i + 1] for i, a in enumerate(argv) if a == "-object"]
    assert any("size=1M" in o for o in objects) and any("size=2M" in o for o in objects)


def test_comma_in_share_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vfio_conform.qemu_lab.qemu.require_tool", lambda name: f"/usr/bin/{name}")
    with pytest.raises(LabError, match="comma"):
        _argv(LabConfig(), tmp_path / "a,b")


def test_planned_devices_are_stable_and_substituted() -> None:
    session = LabSession(LabConfig(modules=("mtty", "mtty_pc")))
    ids = session.planned_devices()
    assert len(ids) == 4 and len(set(ids)) == 4
    assert ids == LabSession(LabConfig(modules=("mtty", "mtty_pc"))).planned_devices()
    argv = session._substitute(["--device", "@DEV0@", "--reports", "@RESULTS@/r", "x@DEV3@"])
    assert argv == ["--device", ids[0], "--reports", "/vfio-lab/results/r", f"x{ids[3]}"]
    assert LabSession(LabConfig(mode="pci")).planned_devices() == [pci_bdf(i) for i in range(5)]


def test_unknown_variant_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="unknown mtty variant"):
        LabSession(LabConfig(modules=("mtty_nope",)))


def test_variant_table() -> None:
    assert {n: v.flags for n, v in VARIANTS.items()} == {
        "mtty": 7, "mtty_sc": 1, "mtty_p2p": 3, "mtty_pc": 5, "mtty_broken": 7, "mtty_lossy": 7,
        "mtty_warn": 7, "mtty_oops": 7, "mtty_noinfo": 7, "mtty_nosize": 7}
    assert VARIANTS["mtty_sc"].mdev_type() == "mtty_sc-2"
    assert [n for n, v in VARIANTS.items() if v.bug] == ["mtty_broken", "mtty_lossy", "mtty_warn",
                                                            "mtty_oops", "mtty_noinfo", "mtty_nosize"]


def test_source_edit_must_match_once() -> None:
    with pytest.raises(LabError, match="expected 1 anchor, found 0"):
        _replace_once("abc", "zzz", "y", "demo")


def test_crash_and_warning_patterns() -> None:
    console = "[ 3.1] sysrq: Trigger a crash\n[ 3.2] Kernel panic - not syncing: sysrq triggered crash\n"
    assert CRASH_PATTERNS.findall(console)[0].startswith("Kernel panic - not syncing: sysrq")
    assert CRASH_PATTERNS.findall("[ 1.0] Oops: int3: 0000 [#1] PREEMPT SMP\n")
    assert not CRASH_PATTERNS.findall("[ 1.0] mtty_dev: mtty_dev_init\n")
    assert WARN_PATTERN.findall("WARNING: CPU: 1 PID: 77 at drivers/x.c:10 f+0x1/0x2\n")


def test_last_test_reads_progress(tmp_path: Path) -> None:
    assert _last_test(tmp_path) is None
    (tmp_path / "progress").write_text("# selected p\tt1\nt1\nt2\n\n")
    assert _last_test(tmp_path) == "t2"


def test_missing_qemu_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda *a, **k: None)
    with pytest.raises(LabError, match="install-lab-deps.sh") as info:
        _argv(LabConfig(), tmp_path)
    assert info.value.kind == "missing-tool"


def test_fatal_marker_pattern() -> None:
    from vfio_conform.qemu_lab.session import FATAL_PATTERN
    assert FATAL_PATTERN.findall("VFIO-LAB: FATAL stage1: overlay mount failed\n") == [
        "stage1: overlay mount failed"]


def test_harness_argv_lists_every_planned_device() -> None:
    session = LabSession(LabConfig())
    argv = session.harness_argv("mtty")
    assert argv[:6] == ["python3", "-m", "vfio_conform", "run", "--profile", "mtty"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--device"] == session.planned_devices()
    assert argv[-2:] == ["--reports", "/vfio-lab/results/reports"]


def test_stall_watchdog_counts_from_progress_file(tmp_path):
    """A progress file older than the stall limit means a hung guest; a fresh one does not."""
    import os
    import time as _time

    from vfio_conform.qemu_lab.qemu import _stalled
    progress = tmp_path / "progress"
    assert not _stalled(progress, None, _time.monotonic())
    assert not _stalled(progress, 60, _time.monotonic())          # no test yet, command just started
    assert _stalled(progress, 60, _time.monotonic() - 61)         # no test for 61 s
    progress.write_text("t1\n")
    assert not _stalled(progress, 60, _time.monotonic() - 600)
    old = _time.time() - 120
    os.utime(progress, (old, old))
    assert _stalled(progress, 60, _time.monotonic())


def test_e1000_with_option_rom_is_a_lab_pci_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vfio_conform.qemu_lab.config import DEFAULT_PCI_DEVICES, PciDeviceSpec
    monkeypatch.setattr("vfio_conform.qemu_lab.qemu.require_tool", lambda name: f"/usr/bin/{name}")
    config = LabConfig(mode="pci", pci_devices=DEFAULT_PCI_DEVICES + (PciDeviceSpec("e1000", "nic0"),))
    devices = [a for i, a in enumerate(_argv(config, tmp_path)) if i and _argv(config, tmp_path)[i - 1] == "-device"]
    (nic,) = [d for d in devices if d.startswith("e1000,")]
    assert nic == "e1000,id=nic0,bus=pcie.0,addr=0x15"     # QEMU's default romfile: a ROM BAR
    assert "e1000e,id=e1000e0,bus=pcie.0,addr=0x13" in devices           # MSI-X table in BAR3
    assert "virtio-net-pci,id=virtionet0,bus=pcie.0,addr=0x14" in devices


OOPS_CONSOLE = """\
[   41.101] VFIO-LAB: command start
[   52.310] BUG: kernel NULL pointer dereference, address: 0000000000000068
[   52.311] #PF: supervisor write access in kernel mode
[   52.312] Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI
[   52.313] CPU: 1 UID: 0 PID: 311 Comm: python3 Tainted: G           OE      6.12.117+deb12-amd64
[   52.314] RIP: 0010:mtty_set_state+0x1c4/0x5e0 [mtty_oops]
[   52.315] Call Trace:
[   52.316]  <TASK>
[   52.317]  vfio_ioctl_device_feature_mig_device_state+0xa1/0x140 [vfio]
[   52.318]  vfio_device_fops_unl_ioctl+0x37e/0x800 [vfio]
[   52.319]  __x64_sys_ioctl+0x94/0xd0
[   52.320]  </TASK>
[   52.321] Modules linked in: mtty_oops(OE) mtty(OE) mdev vfio_iommu_type1 vfio iommufd
[   52.322] CR2: 0000000000000068
[   52.323] ---[ end trace 0000000000000000 ]---
[   52.330] Kernel panic - not syncing: Fatal exception
"""


def test_read_crash_names_the_modules_in_the_trace_only() -> None:
    from vfio_conform.qemu_lab.crash import read_crash
    crash = read_crash(OOPS_CONSOLE)
    assert crash is not None and crash.headline.startswith("BUG: kernel NULL pointer dereference")
    assert crash.modules == ("mtty_oops", "vfio")          # not mtty: only in "Modules linked in"
    assert crash.names("mtty_oops") and not crash.names("mtty")
    assert "RIP: 0010:mtty_set_state" in crash.excerpt and "Kernel panic" in crash.excerpt
    assert read_crash("[ 1.0] VFIO-LAB: command start\n") is None
    sysrq = read_crash("[ 9.0] sysrq: Trigger a crash\n[ 9.1] Kernel panic - not syncing: sysrq triggered crash\n")
    assert sysrq is not None and sysrq.modules == ()


def test_guest_death_blames_the_driver_in_the_trace(tmp_path: Path) -> None:
    """The test the guest died in: a fail when the trace names its profile's module, else an
    infra-error; every cut-short run ends incomplete/crashed; the selection says what never ran."""
    from vfio_conform.qemu_lab.crash import read_crash, read_progress
    from vfio_conform.qemu_lab.harness import LabRun, _record_guest_death
    from vfio_conform.profile import find_profile
    from vfio_conform.results import ResultStore, RunMeta
    lab = Path(__file__).resolve().parent / "profiles"
    oops, stock = find_profile(str(lab / "mtty-oops.yaml")), find_profile("mtty")
    died = "vfio_conform/suites/fsm/test_arcs.py::test_arc[mtty-oops:PRE_COPY_P2P->PRE_COPY]"
    (tmp_path / "progress").write_text(
        f"# selected mtty-oops\t{died}\n# selected mtty\tx::test_arc[mtty:RUNNING->STOP]\n{died}\n")
    for crash, blamed in ((read_crash(OOPS_CONSOLE), "mtty_oops"),
                          (read_crash(OOPS_CONSOLE.replace("[mtty_oops]", "[other]")), None)):
        store = ResultStore(tmp_path / f"s{blamed}.sqlite")
        ids = [store.begin_run(RunMeta(p.name, "kernel", "d", p.name, "6.12", "0", "h", "s")) for p in (oops, stock)]
        run = LabRun("mdev", [oops.name, stock.name], None, tmp_path, "[kernel-crash] x", crash=crash,
                     progress=read_progress(tmp_path / "progress"))
        _record_guest_death(store, ids, run, [oops, stock])
        assert run.blamed == blamed and died in run.judged
        (row,) = store.results(ids[0])
        assert not store.results(ids[1])
        assert [store.run(i)["reason"] for i in ids] == ["crashed", "crashed"]
        if blamed:
            assert (row["outcome"], row["rule"]) == ("fail", "kernel.no-warnings"), row
            assert row["test_id"] == "test_arc[mtty-oops:PRE_COPY_P2P->PRE_COPY]"
            assert "[mtty_oops]" in row["message"] and "NULL pointer" in row["message"]
        else:
            assert row["outcome"] == "infra-error" and "lab-guest-died" in row["test_id"], row
        store.close()
    assert set(run.progress.selected) == {died, "x::test_arc[mtty:RUNNING->STOP]"}


def test_mtty_oops_variant_source() -> None:
    from vfio_conform.qemu_lab.modbuild import Variant, variant_source
    stock = ("#define MTTY_CLASS_NAME \"mtty\"\n#define MTTY_NAME       \"mtty\"\n\t\t.name = \"mtty\",\n"
             "vdev->migration_flags = VFIO_MIGRATION_STOP_COPY |\n\t\t\t\tVFIO_MIGRATION_P2P |\n"
             "\t\t\t\tVFIO_MIGRATION_PRE_COPY;\n"
             "\tdev_dbg(mdev_state->vdev.dev, \"%s: %d -> %d\\n\", __func__, cur, new);\n")
    text = variant_source(stock, VARIANTS["mtty_oops"])
    assert "READ_ONCE(mdev_state->resuming_migf)->disabled = true;" in text
    assert "VFIO_DEVICE_STATE_PRE_COPY_P2P && new == VFIO_DEVICE_STATE_PRE_COPY)" in text
    assert isinstance(VARIANTS["mtty_oops"], Variant)


def test_every_variant_builds_from_every_cached_kernels_mtty() -> None:
    """Each mtty variant's edits find their anchors in every cached kernel's own mtty.c that
    migrates (6.12 checks the PRECOPY_INFO command itself, 7.3 calls the core's helper): a matrix
    boot never stops at a variant's build. Without a lab cache (a fresh machine) nothing is read."""
    from vfio_conform.qemu_lab.config import default_cache_root
    from vfio_conform.qemu_lab.modbuild import migration_missing, variant_source
    sources = sorted(default_cache_root().glob("*-amd64/src/mtty.c"))
    if not sources and os.environ.get("VFIO_LAB_REQUIRED"):
        pytest.fail("VFIO_LAB_REQUIRED=1 but the lab cache holds no kernel's mtty.c")
    for source in sources:
        stock = source.read_text()
        if migration_missing(stock):
            continue
        for variant in VARIANTS.values():
            edited = variant_source(stock, variant)
            assert f'"{variant.name}"' in edited and (edited != stock or not variant.bug), (source, variant.name)
