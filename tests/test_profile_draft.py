"""`vfio-conform profile new`: a draft from a live device loads, marks its guesses, touches nothing,
and runs clean against the device it was written from."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from run_cli import vc
from vfio_conform.backends import registry
from vfio_conform.backends.kernel.sysfs import DeviceLocation
from vfio_conform.backends.sim.transport import SimTransport
from vfio_conform.profile import find_profile, load_profile
from vfio_conform.tools import profile_draft as D
from vfio_conform.uapi.enums import FeatureOp, MigFlag
from vfio_conform.uapi.ioctl import number

FEATURE = number("VFIO_DEVICE_FEATURE")
RESET = number("VFIO_DEVICE_RESET")


def _write(tmp_path: Path, values: list[str], name: str = "draft.yaml") -> Path:
    out = tmp_path / name
    D.write_draft(D.new_draft(values), str(out))
    return out


def test_draft_states_what_the_device_answers(tmp_path):
    path = _write(tmp_path, ["sim-p2p-precopy=sim0", "sim-p2p-precopy=sim1"])
    draft = load_profile(path)
    assert draft.name == "sim-p2p-precopy-draft" and draft.backend == "sim"
    assert draft.protocol == "v2" and draft.flags == MigFlag.STOP_COPY | MigFlag.P2P | MigFlag.PRE_COPY
    assert draft.reset is True and draft.dma_logging is True
    assert draft.devices == ("sim0", "sim1") and draft.regions.peer_layout == "same"
    bar0 = draft.regions.policy(0)
    assert (bar0.access, bar0.size, bar0.mmap) == ("none", 0x10000, True)
    assert draft.regions.policy(7).size == 0x100 and draft.regions.policy(7).mmap is False
    assert all(p.access == "none" for p in draft.regions.policies)
    assert draft.hazards == () and draft.verify == "none"


def test_draft_of_other_flag_sets_and_protocols(tmp_path):
    sc = load_profile(_write(tmp_path, ["sim-stop-copy=sim0"], "sc.yaml"))
    assert sc.flags == MigFlag.STOP_COPY and sc.dma_logging is False
    v1 = load_profile(_write(tmp_path, ["sim-v1-mmap=sim0"], "v1.yaml"))
    assert v1.protocol == "v1" and v1.regions.policy(9).size == 0x10000
    none_base = tmp_path / "plain.yaml"
    none_base.write_text("name: plain\nbackend: sim\ndevices: [sim0]\nmigration: {protocol: none}\n"
                         "features: {reset: false}\nbackend_config:\n  sim: {flags: 0, reset_supported: false}\n")
    plain = load_profile(_write(tmp_path, [f"{none_base}=sim0"], "none.yaml"))
    assert plain.protocol == "none" and plain.reset is False
    mismatch = load_profile(_write(tmp_path, ["sim-mismatch=sim0", "sim-mismatch=sim1"], "mm.yaml"))
    assert mismatch.regions.peer_layout == "different"


GUESSED = ("description", "devices", "data_size_tolerance", "precopy_enomsg", "hazards",
           "known_issues", "timeouts", "walk", "verify", "regions", "backend_config")


def test_every_guess_is_marked_for_review(tmp_path):
    text = _write(tmp_path, ["sim-p2p-precopy=sim0", "sim-p2p-precopy=sim1"]).read_text()
    for key in GUESSED:
        line = next(ln for ln in text.splitlines() if re.match(rf"\s*{key}:", ln))
        assert "# REVIEW:" in line, line
    # facts read from the device are stated as such, not marked
    for key in ("flags", "dma_logging", "reset", "protocol"):
        line = next(ln for ln in text.splitlines() if re.match(rf"\s*{key}:", ln))
        assert "# REVIEW:" not in line, line


class _Recorder:
    """Counts what would change a sim device: region writes and writable mmaps, data fd writes,
    VFIO_DEVICE_FEATURE SETs that are not PROBEs, resets."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        real_pwrite, real_write = SimTransport.pwrite, SimTransport.write
        real_mmap, real_ioctl = SimTransport.mmap, SimTransport.ioctl

        def pwrite(tr, fd, data, offset):
            self.calls.append(f"pwrite({offset:#x})")
            return real_pwrite(tr, fd, data, offset)

        def write(tr, fd, data, timeout=None):
            self.calls.append("write")
            return real_write(tr, fd, data, timeout)

        def mmap_(tr, fd, length, offset, writable):
            if writable:
                self.calls.append("mmap(writable)")
            return real_mmap(tr, fd, length, offset, writable)

        def ioctl(tr, fd, request, arg=None):
            if request == RESET:
                self.calls.append("reset")
            if request == FEATURE and isinstance(arg, bytearray):
                flags = int.from_bytes(arg[4:8], "little")
                if flags & FeatureOp.SET and not flags & FeatureOp.PROBE:
                    self.calls.append(f"feature SET {flags & 0xffff}")
            return real_ioctl(tr, fd, request, arg)

        for name, fn in (("pwrite", pwrite), ("write", write), ("mmap", mmap_), ("ioctl", ioctl)):
            monkeypatch.setattr(SimTransport, name, fn)


def test_profile_new_writes_nothing_to_the_device(tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    for base in ("sim-p2p-precopy", "sim-v1-mmap", "sim-mismatch"):
        _write(tmp_path, [f"{base}=sim0", f"{base}=sim1"], f"{base}.yaml")
    assert rec.calls == []
    # the recorder sees what it is there to see (else the assertion above proves nothing)
    profile = find_profile("sim-p2p-precopy")
    device = registry.open_device(profile, "sim0")
    try:
        device.region_write(0, 0, b"\x01")
        device.try_reset()
    finally:
        device.close(safe=False)
    assert rec.calls == ["pwrite(0x0)", "reset"]


SIM_BASES = ("sim-stop-copy", "sim-p2p-precopy", "sim-v1-mmap", "sim-mismatch")


@pytest.mark.parametrize("base", SIM_BASES)
def test_unedited_draft_runs_clean_on_its_device(tmp_path, base):
    path = _write(tmp_path, [f"{base}=sim0", f"{base}=sim1"])
    result = vc("run", "--profile", str(path), "--no-store", "-q", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = next(ln for ln in result.stdout.splitlines() if ln.startswith(f"{base}-draft: run"))
    assert "fail=" not in summary and "infra-error=" not in summary and "pass=" in summary, summary


def test_draft_from_a_vfio_user_server(tmp_path, vfio_user_pair):
    src, dst = vfio_user_pair
    path = tmp_path / "vu.yaml"
    result = vc("profile", "new", "--from-device", f"vfio-user:{src}", "--from-device",
                f"vfio-user:{dst}", "-o", str(path))
    assert result.returncode == 0, result.stderr
    draft = load_profile(path)
    assert draft.backend == "vfio-user" and draft.flags == MigFlag.STOP_COPY | MigFlag.PRE_COPY
    assert draft.reset is True and draft.dma_logging is True
    assert draft.regions.policy(1).size == 0x3000 and draft.regions.policy(1).mmap is True
    text = path.read_text()        # MIG_DATA_SIZE is no vfio-user feature: said, not probed into a crash
    assert "GET MIG_DATA_SIZE: not a feature of the transport" in text
    assert "unused: MIG_DATA_SIZE is not a feature of the device's transport" in text


def test_known_deviations_of_the_base_profile_are_carried_over(tmp_path):
    base = tmp_path / "waived.yaml"
    base.write_text(
        "name: waived\nbackend: sim\ndevices: [sim0, sim1]\nmigration: {flags: [STOP_COPY]}\n"
        "known_issues:\n"
        "  - {test: 'test_resume_rejects_corrupt_header[waived*', rule: resume.corrupt-header-refused,\n"
        "     link: 'https://example.org/bug', reason: 'a documented deviation'}\n"
        "backend_config:\n  sim: {flags: 1}\n")
    path = _write(tmp_path, [f"{base}=sim0"])
    draft = load_profile(path)
    (issue,) = draft.known_issues
    assert issue.test == "test_resume_rejects_corrupt_header[waived-draft*"
    assert issue.link == "https://example.org/bug" and issue.rule == "resume.corrupt-header-refused"
    assert "# REVIEW:" in next(ln for ln in path.read_text().splitlines() if ln.startswith("known_issues:"))


def test_rename_waiver_only_rewrites_the_profile_name():
    assert D._rename_waiver("test_x[mtty*", "mtty", "mtty-draft") == "test_x[mtty-draft*"
    assert D._rename_waiver("test_x[mtty:STOP->*", "mtty", "d") == "test_x[d:STOP->*"
    assert D._rename_waiver("test_x[mtty-sc*", "mtty", "d") == "test_x[mtty-sc*"
    assert D._rename_waiver("test_x", "mtty", "d") == "test_x"


def _loc(**kw) -> DeviceLocation:
    base = dict(id="0000:00:03.0", kind="pci", driver="vfio-pci", vendor_id=0x1234, device_id=0x11e8,
                mdev_type=None, iommu_group=3, group_path="/dev/vfio/3", cdev_path=None)
    return DeviceLocation(**{**base, **kw})


def test_host_device_is_matched_to_its_shipped_profile():
    edu = D._matched_profile("kernel", _loc())
    assert edu is not None and edu.name == "qemu-edu"
    mtty = D._matched_profile("kernel", _loc(id="83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", kind="mdev",
                                             driver="mtty", vendor_id=None, device_id=None,
                                             mdev_type="mtty-2"))
    assert mtty is not None and mtty.name == "mtty"
    assert D._matched_profile("kernel", _loc(vendor_id=0x8086, device_id=0x100e)) is None
    lines = D._match_lines(_loc(vendor_id=0x8086, device_id=0x100e))
    assert lines[1:] == ["  driver: vfio-pci", "  vendor_id: 0x8086", "  device_id: 0x100e"]
    source = D.Source("0000:00:03.0", D._stub("kernel"), None)
    assert D._draft_name(None, _loc(vendor_id=0x8086, device_id=0x100e), source) == "vfio-pci-8086-100e-draft"


def test_bad_device_ids_are_one_line_exit_2(tmp_path):
    out = tmp_path / "x.yaml"
    for args in (["--from-device", "0000:00:99.0"], ["--from-device", "no-such-profile=sim0"],
                 ["--from-device", "sim-stop-copy=sim7"],
                 ["--from-device", "sim-stop-copy=sim0", "--from-device", "sim-p2p=sim1"]):
        result = vc("profile", "new", *args, "-o", str(out))
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert not out.exists()


def test_existing_output_is_not_overwritten(tmp_path):
    out = tmp_path / "x.yaml"
    out.write_text("mine\n")
    result = vc("profile", "new", "--from-device", "sim-stop-copy=sim0", "-o", str(out))
    assert result.returncode == 2 and "not overwritten" in result.stderr
    assert out.read_text() == "mine\n"
