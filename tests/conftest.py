"""Helpers for the harness's own unit tests."""
from pathlib import Path

import pytest

from pg_server import pg_server  # noqa: F401  (a throwaway PostgreSQL server, for any test)
from vfio_user_server import (vfio_user_pair, vfio_user_sanitized_bin, vfio_user_sanitized_pair,  # noqa: F401
                              vfio_user_server_bin)      # libvfio-user's sample server (plain, sanitized)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "vfio-uapi.md").exists():
        pytest.fail(f"reference material missing: {REFERENCE} (clone the project beside ../shared)")
    return REFERENCE
