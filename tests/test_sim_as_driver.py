"""Real-driver profiles (written from the kernel source) and their sim twins.

Each in-tree variant driver's profile has a sim twin: the same migration, features, waivers,
verify hook, walk bounds and region fences, on a sim configured to behave as the driver does
(flags, ENOMSG or 0 at the end of pre-copy data, MIG_DATA_SIZE estimate, DMA logging, stream size).
The full suite runs on every twin and must record no failure: a profile that contradicts its own
suites, or a suite that false-fails a behaviour the driver documents, fails here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from run_cli import sqlite_rows, vc
from vfio_conform.backends.sim.config import SimConfig
from vfio_conform.backends.sim.device import SimDevice
from vfio_conform.profile import find_profile, load_all
from vfio_conform.uapi.enums import MigFlag

#: sim twin -> the real-driver profile it stands for.
TWINS = {
    "sim-as-mlx5": "mlx5_vfio_pci",
    "sim-as-hisi_acc": "hisi_acc_vfio_pci",
    "sim-as-pds": "pds_vfio_pci",
    "sim-as-qat": "qat_vfio_pci",
    "sim-as-virtio": "virtio_vfio_pci",
    "sim-as-xe": "xe-vfio-pci",
}
#: Kernel-backend PCI profiles that are not in-tree migration variant drivers (mdev samples are
#: recognised by their mdev_type).
NOT_VARIANT_DRIVERS = {"vfio-pci", None}
#: Sections a twin must share with its real profile (hazards, timeouts, match and backend differ).
SHARED = ("migration", "features", "known_issues", "verify", "walk", "regions")


def test_every_real_driver_profile_has_a_sim_twin():
    good, bad = load_all()
    assert not bad, bad
    drivers = {p.name for p in good if p.backend == "kernel" and p.match.mdev_type is None
               and p.match.driver not in NOT_VARIANT_DRIVERS}
    assert drivers == set(TWINS.values())
    for real in drivers:
        profile = find_profile(real)
        assert profile.match.kernel, f"{real}: a real-driver profile names the kernels it describes"
        assert not profile.devices, f"{real}: a real device is named with --device, never by default"


@pytest.mark.parametrize("real", sorted(TWINS.values()))
def test_real_driver_profile_never_writes_a_bar_and_cites_its_source(real):
    """Real hardware: read-only region checks, no writes anywhere, nothing past a BAR's end; and
    the facts name the kernel source they were read from."""
    profile = find_profile(real)
    for policy in profile.regions.policies:
        assert policy.access in ("none", "read"), f"{real}: {policy.name} is {policy.access}"
        assert policy.name == "CONFIG" or not policy.probe_bounds, f"{real}: probes past {policy.name}"
    text = Path(profile.path).read_text()
    assert "git.kernel.org" in text or "github.com/torvalds/linux" in text, real


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_twin_shares_the_real_profile_sections(twin):
    sim, real = find_profile(twin), find_profile(TWINS[twin])
    for section in SHARED:
        assert getattr(sim, section) == getattr(real, section), f"{twin}: {section} differs from {real.name}"


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_twin_sim_behaves_as_the_profile_says(twin):
    """The sim section models what the profile declares: flags, DMA logging, ENOMSG, MIG_DATA_SIZE."""
    profile = find_profile(twin)
    config = SimConfig.from_dict(profile.backend_config["sim"], profile.devices[0])
    assert config.flags == int(profile.flags)
    assert config.dma_logging == profile.dma_logging
    assert config.reset_supported == profile.reset
    if profile.flags & MigFlag.PRE_COPY:
        # a must-ENOMSG profile needs a device that sends it; a should one models a driver that returns 0
        assert config.precopy_end == ("enomsg" if profile.precopy_enomsg == "must" else "zero")
    device = SimDevice(config, profile.devices[0])
    actual = device.layout.stream_len
    assert abs(device.data_size() - actual) <= profile.data_size_tolerance * actual


def test_sim_data_size_report_is_what_mig_data_size_says():
    exact = SimDevice(SimConfig.from_dict({}), "sim0")
    fixed = SimDevice(SimConfig.from_dict({"data_size_report": 65536}), "sim0")
    assert exact.data_size() == exact.layout.stream_len
    assert fixed.data_size() == 65536 != fixed.layout.stream_len
    with pytest.raises(ValueError, match="data_size_report"):
        SimConfig.from_dict({"data_size_report": -1})


def test_every_twin_passes_the_full_suite(tmp_path):
    """One run of the whole suite over every twin: exit 0, no fail or infra-error recorded."""
    store = tmp_path / "twins.sqlite"
    args = ["run", "-n", "2", "-q", "--store", str(store)]
    for twin in sorted(TWINS):
        args += ["--profile", twin]
    proc = vc(*args, timeout=900)
    rows = sqlite_rows(store, "SELECT r.profile, t.test_id, t.outcome, t.message FROM results t "
                              "JOIN runs r ON r.id = t.run_id")
    bad = [r for r in rows if r["outcome"] in ("fail", "infra-error")]
    assert proc.returncode == 0 and not bad, (bad[:5], proc.stdout[-3000:], proc.stderr[-2000:])
    assert {r["profile"] for r in rows} == set(TWINS)
    passed = {r["profile"] for r in rows if r["outcome"] == "pass"}
    assert passed == set(TWINS)


def test_twin_that_contradicts_its_driver_is_caught(tmp_path):
    """A twin whose sim lies about MIG_DATA_SIZE beyond the profile's tolerance fails the run."""
    import yaml
    from vfio_conform.base.constants import PROFILES_DIR
    data = yaml.safe_load((PROFILES_DIR / "sim-as-qat.yaml").read_text())
    data["name"] = "sim-as-qat-lying"
    data["backend_config"]["sim"]["data_size_report"] = 4096
    path = tmp_path / "lying.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    store = tmp_path / "lying.sqlite"
    proc = vc("run", "-q", "--store", str(store), "--profile", str(path), "--",
              "-k", "data_size or datasize", timeout=300)
    rows = sqlite_rows(store, "SELECT test_id, outcome, rule FROM results")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert any(r["outcome"] == "fail" and r["rule"] == "stream.data-size-estimate" for r in rows), rows
