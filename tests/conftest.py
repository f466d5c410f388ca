"""Helpers for the harness's own unit tests."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "vfio-uapi.md").exists():
        pytest.fail(f"reference material missing: {REFERENCE} (clone the project beside ../shared)")
    return REFERENCE
