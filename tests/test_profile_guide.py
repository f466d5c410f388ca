"""docs/profile-guide.md: its field table is the schema's, and its examples are real, valid profiles."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from vfio_conform.targets.select import check_profile
from vfio_conform.profile import find_profile, load_profile
from vfio_conform.profile import fields

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "profile-guide.md"
EXAMPLES = re.compile(r"```yaml\n(name: .*?)```", re.S)


def test_field_table_is_current():
    assert fields.current(GUIDE.read_text()) == fields.block(), (
        "docs/profile-guide.md is out of date: run python3 -m vfio_conform.profile.fields --write")


def test_every_key_of_every_section_is_described():
    keys = [key for key, _, meaning in fields.rows() if not meaning.strip()]
    assert not keys, f"keys without a description in their section's docstring Args: {keys}"
    listed = {key for key, _, _ in fields.rows()}
    assert {"match.kernel", "migration.flags_by_kernel", "regions.<REGION>.access",
            "known_issues[].test", "timeouts.io"} <= listed


@pytest.mark.parametrize("shipped", ["mtty", "mlx5_vfio_pci"])
def test_examples_are_valid_and_agree_with_the_shipped_profile(tmp_path, shipped):
    examples = {re.match(r"name: (\S+)", text).group(1): text for text in EXAMPLES.findall(GUIDE.read_text())}
    path = tmp_path / f"{shipped}.yaml"
    path.write_text(examples[shipped])
    example, real = load_profile(path), find_profile(shipped)
    check_profile(example)
    for section in ("match", "migration", "features", "regions", "verify", "hazards"):
        assert getattr(example, section) == getattr(real, section), f"{shipped} example: {section} differs"


def test_readme_points_to_the_guide():
    readme = (GUIDE.parents[1] / "README.md").read_text()
    assert "docs/profile-guide.md" in readme
