"""The kernel matrix against the real Debian archives (network; no boot): a version and the
aliases resolve through the private apt configuration to builds whose packages the archives
carry, and the host's apt configuration is left alone."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from vfio_conform.qemu_lab import kernels
from vfio_conform.qemu_lab.config import default_cache_root


def _host_apt_state() -> str:
    h = hashlib.sha256()
    for root in (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")):
        for path in sorted([root] if root.is_file() else root.rglob("*") if root.is_dir() else []):
            if path.is_file():
                h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def cache_root() -> Path:
    if shutil.which("apt-get") is None or not kernels.PrivateApt(Path("/nonexistent")).keyring.exists():
        msg = "the kernel matrix needs apt-get and debian-archive-keyring"
        if os.environ.get("VFIO_LAB_REQUIRED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return default_cache_root()


def test_versions_and_aliases_resolve_against_the_real_archives(cache_root):
    before = _host_apt_state()
    latest, infos = kernels.resolve("latest", cache_root)
    six_one, _ = kernels.resolve("6.1", cache_root)
    assert _host_apt_state() == before                       # the host's sources are untouched
    assert (cache_root / "apt" / "etc" / "sources.list").read_text().count("signed-by=") == 4
    assert tuple(int(x) for x in latest.release.split(".")[:2]) >= (7, 3)
    assert latest.packages[0].startswith("linux-binary-")     # the split layout of 7.x
    assert all(i.size > 0 and i.version == latest.version for i in infos)
    assert six_one.kver.startswith("6.1.0-") and six_one.release.startswith("6.1.")
    assert "linux-kbuild-6.1" in six_one.packages
    with pytest.raises(kernels.UnknownKernel, match="the archives carry: 6.1 "):
        kernels.resolve("4.19", cache_root)


def test_the_default_matrix_is_three_kernels_the_archives_carry_whole(cache_root):
    """6.1, 6.12 and the newest resolve whole; 6.18 is checked: left out with the missing packages
    named (its headers and source gone from trixie-backports), or taken in once whole again."""
    from vfio_conform.qemu_lab import matrix
    specs, skipped = matrix.resolve_kernels(None, cache_root)
    series = [s.source_series for s in specs]
    assert series[:2] == ["6.1", "6.12"] and len(specs) >= 3
    assert tuple(int(x) for x in specs[-1].release.split(".")[:2]) >= (7, 3)
    if "6.18" in skipped:
        assert "6.18" not in series and "the archives lack" in skipped["6.18"]
        assert "linux-source-6.18" in skipped["6.18"] and "\n" not in skipped["6.18"]
    else:
        assert "6.18" in series
