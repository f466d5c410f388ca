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

from vfio_conform.backends.vfio_user.build import (BuildError, build, build_sanitized, built_server,
                                                   find_source)
from vfio_conform.backends.vfio_user.serve import Supervisor


def _required() -> bool:
    return bool(os.environ.get("VC_REQUIRE_VFIO_USER") or os.environ.get("VC_REQUIRE_REPORT_DEPS"))


def sample_server() -> Path:
    """The built sample server (built on first use); skip/fail when it cannot be."""
    path = built_server()
    if path is not None:
        return path
    try:
        return build(find_source())
    except BuildError as exc:
        why = f"libvfio-user sample server unavailable: {exc} (scripts/install-vfio-user.sh)"
        if _required():
            pytest.fail(why)
        pytest.skip(why)


def sanitized_sample_server() -> Path:
    """The sample server built with ASan+UBSan (built on first use); skip/fail when it cannot be."""
    path = built_server(sanitized=True)
    if path is not None:
        return path
    try:
        return build_sanitized(find_source())
    except BuildError as exc:
        why = f"sanitized libvfio-user sample server unavailable: {exc} (scripts/install-vfio-user.sh)"
        if _required():
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def vfio_user_server_bin() -> Path:
    return sample_server()


@pytest.fixture(scope="session")
def vfio_user_sanitized_bin() -> Path:
    return sanitized_sample_server()


def _pair(binary: Path):
    tmp = Path(tempfile.mkdtemp(prefix="vc-vu-"))
    # the servers' output goes to SOCKET.log (serve.log_path), where the harness reads sanitizer reports
    sups = [Supervisor(tmp / f"{role}.sock", [str(binary)]) for role in ("src", "dst")]
    try:
        for sup in sups:
            sup.start()
        yield tuple(sup.socket for sup in sups)
    finally:
        for sup in sups:
            sup.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def vfio_user_pair(vfio_user_server_bin):
    """Two supervised sample servers (source, destination): yields their socket paths."""
    yield from _pair(vfio_user_server_bin)


@pytest.fixture
def vfio_user_sanitized_pair(vfio_user_sanitized_bin):
    """Two supervised sample servers built with ASan+UBSan: yields their socket paths."""
    yield from _pair(vfio_user_sanitized_bin)
