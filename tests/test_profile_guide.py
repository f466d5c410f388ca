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


def test_the_field_table_comes_from_the_package_alone(tmp_path, monkeypatch, capsys):
    """Without the checkout's docs (as from a wheel) the table is the same, `--write` without a path
    is a one-line usage error, and `--write GUIDE` fills the block of the guide it is given."""
    expected = fields.block()
    monkeypatch.setattr(fields, "CHECKOUT", tmp_path / "site-packages")      # no pyproject, no docs/
    assert fields.checkout_guide() is None
    assert fields.main([]) == 0
    assert capsys.readouterr().out == fields.table() + "\n" and fields.block() == expected
    assert fields.main(["--write"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--write FILE" in err
    guide = tmp_path / "guide.md"
    guide.write_text(f"# Fields\n\n{fields.BEGIN}\nold\n{fields.END}\n\nafter\n")
    assert fields.main(["--write", str(guide)]) == 0
    assert guide.read_text() == f"# Fields\n\n{expected}\n\nafter\n"
    assert fields.main(["--write", str(tmp_path / "missing.md")]) == 2
    assert fields.main(["--bogus"]) == 2
    monkeypatch.undo()
    assert fields.checkout_guide() == GUIDE          # in a checkout: its own guide
