"""libvfio-user's sample server for the vfio-user tests: the build (cached) and supervised servers.

Skipped when the toolchain or the snapshot is missing, unless VC_REQUIRE_VFIO_USER (or
VC_REQUIRE_REPORT_DEPS, as the CI job sets) is set: then a missing server is a failure.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from vfio_conform.backends.vfio_user.build import BuildError, build, built_server, default_tarball
from vfio_conform.backends.vfio_user.serve import Supervisor


def _required() -> bool:
    return bool(os.environ.get("VC_REQUIRE_VFIO_USER") or os.environ.get("VC_REQUIRE_REPORT_DEPS"))


def sample_server() -> Path:
    """The built sample server (built on first use); skip/fail when it cannot be."""
    path = built_server()
    if path is not None:
        return path
    try:
        return build(default_tarball())
    except BuildError as exc:
        why = f"libvfio-user sample server unavailable: {exc} (scripts/install-vfio-user.sh)"
        if _required():
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def vfio_user_server_bin() -> Path:
    return sample_server()


@pytest.fixture
def vfio_user_pair(vfio_user_server_bin):
    """Two supervised sample servers (source, destination): yields their socket paths."""
    tmp = Path(tempfile.mkdtemp(prefix="vc-vu-"))
    sups = [Supervisor(tmp / f"{role}.sock", [str(vfio_user_server_bin)], log=tmp / f"{role}.log")
            for role in ("src", "dst")]
    try:
        for sup in sups:
            sup.start()
        yield tuple(sup.socket for sup in sups)
    finally:
        for sup in sups:
            sup.stop()
        shutil.rmtree(tmp, ignore_errors=True)
