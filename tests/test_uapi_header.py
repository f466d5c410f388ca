"""The Python uAPI tables against real C headers (gcc): the system's and Debian's 6.12 headers."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from vfio_conform.base.errors import InfraError
from vfio_conform.tools import header_check as hc

SETUP = "run scripts/setup.sh as root (apt-get install gcc linux-libc-dev; prefetch of the 6.12 headers)"


@pytest.fixture(scope="module")
def gcc() -> str:
    path = shutil.which("gcc")
    if not path:
        pytest.fail(f"gcc is not installed: {SETUP}")
    return path


def headers_612() -> Path:
    """Debian's 6.12 uAPI headers from the cache, fetched now if missing; fails (never skips)."""
    try:
        return hc.cached_headers() or hc.fetch_headers()
    except InfraError as exc:
        pytest.fail(f"cannot get the {hc.DEFAULT_KVER} uAPI headers: {exc}\n{SETUP}")


def _system_vfio_h() -> Path:
    path = hc.SYSTEM_INCLUDE / "linux" / "vfio.h"
    if not path.is_file():
        pytest.fail(f"{path} is missing: {SETUP}")
    return path


def test_612_headers_define_and_match_every_item(gcc):
    report = hc.check(headers_612())
    assert not report.absent, report.table()
    assert not report.mismatches, report.table()
    assert len(report.checked) == len(hc.all_items())
    assert report.passed(strict=True)


def test_system_header_has_no_real_mismatch(gcc):
    vfio_h = _system_vfio_h()
    report = hc.check(hc.SYSTEM_INCLUDE)
    assert report.unexplained == [], report.table()
    assert report.checked, "nothing was compiled"
    # Absent is decided from the header text: names the text lacks are reported, never passed.
    text = vfio_h.read_text()
    absent = {a.label for a in report.absent}
    for name in ("VFIO_MIG_GET_PRECOPY_INFO", "VFIO_DEVICE_STATE_PRE_COPY", "VFIO_DEVICE_BIND_IOMMUFD"):
        assert (name in absent) == (name not in text)
    if "struct vfio_precopy_info {" not in text:
        assert "sizeof(vfio_precopy_info)" in absent


def test_every_kind_of_item_is_covered():
    labels = {item.label for item in hc.all_items()}
    assert "vfio_region_info_cap_type.header.id offset" in labels          # nested struct fields
    assert "vfio_region_info_cap_sparse_mmap_hdr size" in labels           # offsetof(areas)
    assert "vfio_region_info_cap_sparse_mmap.nr_areas offset" in labels
    assert "vfio_device_feature_mig_state.data_fd signed" in labels
    assert {"VFIO_DEVICE_FEATURE", "IOMMU_IOAS_ALLOC", "VFIO_DEVICE_STATE_PRE_COPY_P2P",
            "VFIO_MIGRATION_PRE_COPY", "VFIO_REGION_INFO_FLAG_CAPS", "VFIO_DEVICE_FLAGS_CDX",
            "VFIO_DEVICE_FEATURE_PROBE", "VFIO_TYPE1v2_IOMMU", "VFIO_DEVICE_STATE_V1_SAVING",
            "VFIO_REGION_INFO_CAP_SPARSE_MMAP", "VFIO_REGION_TYPE_MIGRATION_DEPRECATED"} <= labels


def _edited_header(tmp_path: Path, edit) -> Path:
    """A copy of the system vfio.h with one struct edited, as an include dir."""
    include = tmp_path / "include"
    (include / "linux").mkdir(parents=True)
    (include / "linux" / "vfio.h").write_text(edit(_system_vfio_h().read_text()))
    return include


def test_a_wrong_layout_is_a_mismatch(gcc, tmp_path: Path):
    def widen(text: str) -> str:
        return re.sub(r"(struct vfio_group_status \{\s*__u32\s+argsz;\s*)__u32(\s+flags;)", r"\1__u64\2", text)
    report = hc.check(_edited_header(tmp_path, widen))
    bad = {m.label: m for m in report.unexplained}
    assert bad["sizeof(vfio_group_status)"].c == 16 and bad["sizeof(vfio_group_status)"].python == 8
    assert bad["vfio_group_status.flags size"].c == 8
    assert not report.passed(strict=False)
    assert hc.main(["--include", str(tmp_path / "include")]) == 1


def test_a_missing_newer_field_is_reported_as_older_header(gcc, tmp_path: Path):
    def drop_pad(text: str) -> str:
        return re.sub(r"(struct vfio_device_info \{.*?)__u32\s+pad;[^\n]*\n", r"\1", text, flags=re.S)
    report = hc.check(_edited_header(tmp_path, drop_pad))
    size = next(m for m in report.mismatches if m.label == "sizeof(vfio_device_info)")
    assert (size.python, size.c) == (24, 20) and "older than 6.12" in size.note and "pad" in size.note
    assert "vfio_device_info.pad offset" in {a.label for a in report.absent}
    assert report.passed(strict=False) and not report.passed(strict=True)


def test_sanitize_mirrors_headers_install():
    assert hc._sanitize("\t__u64 __user *data;") == "\t__u64 *data;"
    assert hc._sanitize("#ifndef _UAPIVFIO_H\n#define _UAPIVFIO_H") == "#ifndef VFIO_H\n#define VFIO_H"


def test_cache_dir_follows_xdg(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert hc.cache_dir("6.12.117+deb12") == tmp_path / "vfio-conform" / "uapi" / "6.12.117"
    assert hc.cached_headers("6.12.117+deb12") is None


def test_cli_on_system_header(gcc, capsys):
    _system_vfio_h()
    assert hc.main([]) == 0
    assert "items checked" in capsys.readouterr().out


def test_a_struct_grown_at_its_end_after_argsz_is_explained(gcc, tmp_path: Path):
    """Newer kernels append fields to argsz structs (7.3's vfio_device_bind_iommufd 16 -> 24 bytes):
    the kernel still takes the older size, so only the size differs and that is explained."""
    def grow(text: str) -> str:
        return re.sub(r"(struct vfio_group_status \{[^}]*?)(\};)", r"\1\t__u64 added_later;\n\2", text, count=1)
    report = hc.check(_edited_header(tmp_path, grow))
    size = next(m for m in report.mismatches if m.label == "sizeof(vfio_group_status)")
    assert (size.python, size.c) == (8, 16) and size.note.startswith("argsz-extended")
    assert report.passed(strict=False) and not report.passed(strict=True)
    assert "EXTENDED" in report.table()
