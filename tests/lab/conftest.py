"""Fixtures for the lab tests: one prepared cache per session, skip cleanly without tools."""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

import pytest

from vfio_conform.qemu_lab import LabConfig, LabSession, Prepared


def _missing_tools() -> list[str]:
    return [t for t in ("qemu-system-x86_64", "apt-get", "dpkg-deb", "depmod", "cpio", "make")
            if shutil.which(t) is None]


@pytest.fixture(scope="session")
def lab_prepared() -> Prepared:
    """Download/build the lab cache once (skip, or fail if VFIO_LAB_REQUIRED=1, without tools)."""
    missing = _missing_tools()
    if missing or os.geteuid() != 0:
        why = f"missing {missing}" if missing else "not root"
        msg = f"lab needs root and scripts/install-lab-deps.sh ({why})"
        if os.environ.get("VFIO_LAB_REQUIRED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    t0 = time.monotonic()
    prepared = LabSession(LabConfig()).prepare()
    print(f"\nlab prepare: {time.monotonic() - t0:.1f}s")
    return prepared


@pytest.fixture
def lab(lab_prepared: Prepared) -> Callable[..., LabSession]:
    """Factory: lab(**LabConfig fields) -> a LabSession sharing the prepared cache."""
    def make(**fields: object) -> LabSession:
        return LabSession(LabConfig(**fields))  # type: ignore[arg-type]
    return make


@pytest.fixture
def qemu_chroot_possible(lab_prepared: Prepared) -> None:
    """The consumer lane's QEMU chroot is cached or can be built (debootstrap); skip otherwise."""
    from vfio_conform.qemu_lab.config import default_cache_root
    from vfio_conform.qemu_lab.qemu_chroot import QEMU_BIN, SUITE
    cached = (default_cache_root() / f"qemu-{SUITE}" / "root" / QEMU_BIN).exists()
    if not cached and shutil.which("debootstrap", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        msg = "the consumer lane needs debootstrap (scripts/install-lab-deps.sh)"
        if os.environ.get("VFIO_LAB_REQUIRED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
