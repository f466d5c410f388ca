"""Kernel ranges in profiles: match.kernel, migration.flags_by_kernel, match.device_ids."""
from __future__ import annotations

import dataclasses

import pytest

from run_cli import sqlite_rows, vc
from vfio_conform.base.errors import ConfigError
from vfio_conform.profile import find_profile, load_profile
from vfio_conform.profile.matching import best_match
from vfio_conform.profile.schema import _kernel_matches
from vfio_conform.uapi.enums import MigFlag

F = MigFlag
BASE = """\
name: demo
backend: sim
devices: [sim0, sim1]
migration:
  flags: [STOP_COPY, P2P, PRE_COPY]
"""


@dataclasses.dataclass
class Loc:
    driver: str | None = None
    vendor_id: int | None = None
    device_id: int | None = None
    mdev_type: str | None = None


@pytest.mark.parametrize("release,spec,want", [
    ("6.1.0-18-amd64", ">=5.18,<6.2", True),
    ("6.2.0", ">=5.18,<6.2", False),
    ("5.17.3", ">=5.18,<6.2", False),
    ("6.12.117+deb12-amd64", "6.12.117+deb12-*", True),
    ("6.13.0", "<6.13", False),
])
def test_kernel_specs(release, spec, want):
    assert _kernel_matches(release, spec) is want


def test_flags_by_kernel_picks_the_running_kernels_flags():
    mlx5 = find_profile("mlx5_vfio_pci")
    assert mlx5.flags == F.STOP_COPY | F.P2P | F.PRE_COPY
    assert mlx5.for_kernel("6.1.0-18-amd64").flags == F.STOP_COPY | F.P2P
    assert mlx5.for_kernel("6.12.117+deb12-amd64") is mlx5
    hisi = find_profile("hisi_acc_vfio_pci")
    assert hisi.for_kernel("5.19.0").flags == F.STOP_COPY


def test_profile_for_another_kernel_is_refused_at_its_line():
    mlx5 = find_profile("mlx5_vfio_pci")
    with pytest.raises(ConfigError) as info:
        mlx5.for_kernel("5.15.0-91-generic")
    err = info.value
    assert err.field == "match.kernel" and err.line == mlx5.lines["match.kernel"]
    assert "describes kernels >=5.18, not 5.15.0-91-generic" in str(err)


def test_matching_uses_device_ids_and_kernel():
    profiles = [find_profile(n) for n in ("hisi_acc_vfio_pci", "mlx5_vfio_pci", "qat_vfio_pci")]
    zip_vf = Loc("hisi_acc_vfio_pci", 0x19E5, 0xA251)
    assert best_match(profiles, zip_vf).name == "hisi_acc_vfio_pci"
    assert best_match(profiles, Loc("qat_vfio_pci", 0x8086, 0x4945), "6.12.0").name == "qat_vfio_pci"
    assert best_match(profiles, Loc("qat_vfio_pci", 0x8086, 0x4947)) is None
    assert best_match(profiles, zip_vf, "5.10.0") is None


@pytest.mark.parametrize("extra,line,field,words", [
    ("match:\n  kernel: ['>=six']\n", 7, "match.kernel.0", "'>=six' is not a kernel spec"),
    ("match:\n  device_ids: [0x10, fast]\n", 7, "match.device_ids.1", "expected a non-negative integer"),
    ("  flags_by_kernel:\n    - kernel: ['<6.2']\n      flags: [P2P]\n", 8,
     "migration.flags_by_kernel.0.flags", "STOP_COPY is mandatory"),
    ("  flags_by_kernel:\n    - flags: [STOP_COPY]\n", 7, "migration.flags_by_kernel.0.kernel", "is required"),
    ("  flags_by_kernel:\n    - {kernel: ['<6.2'], flags: [STOP_COPY], since: 5}\n", 7,
     "migration.flags_by_kernel.0.since", "unknown key 'since'"),
])
def test_bad_kernel_fields_name_file_line_field(tmp_path, extra, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE + extra)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    err = info.value
    assert (err.line, err.field) == (line, field), str(err)
    assert words in str(err) and str(err).startswith(f"{path}:{line}: {field}: ")


def test_run_on_a_kernel_the_profile_does_not_describe_exits_2():
    proc = vc("run", "--profile", "mlx5_vfio_pci", "--device", "0000:3b:00.1", "--kernel-release", "5.15.0")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "mlx5_vfio_pci.yaml:" in lines[0] and "match.kernel:" in lines[0], lines


@pytest.mark.parametrize("release,outcome", [("6.1.0", "fail"), ("6.12.0", "pass")])
def test_run_holds_the_device_to_its_kernels_flags(tmp_path, release, outcome):
    """A flags_by_kernel entry replaces the flags in the run: the sim reports 7, which is right on
    6.12 and wrong on a kernel whose entry says STOP_COPY|P2P."""
    path = tmp_path / "ranged.yaml"
    path.write_text(BASE + "  flags_by_kernel:\n    - {kernel: ['<6.2'], flags: [STOP_COPY, P2P]}\n"
                    "backend_config: {sim: {flags: 7}}\n")
    store = tmp_path / "r.sqlite"
    proc = vc("run", "-q", "--store", str(store), "--profile", str(path), "--kernel-release", release,
              "--", "-k", "test_migration_flags_are_valid")
    rows = sqlite_rows(store, "SELECT outcome, rule FROM results")
    assert [r["outcome"] for r in rows] == [outcome], (rows, proc.stdout[-1500:])
    if outcome == "fail":
        assert rows[0]["rule"] == "fsm.flags-match-profile" and proc.returncode == 1
