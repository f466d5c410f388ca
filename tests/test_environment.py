"""Environment capture: a host device described from sysfs (driver module, version, srcversion,
firmware, PCI identity, IOMMU mode), stored with its run (and read from stores that predate it),
and compared by `diff`."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from test_kernel_backend import UUID, FakeHost
from test_store_old_schema import OLD_SCHEMA
from vfio_conform.backends import registry
from vfio_conform.backends.kernel.environment import describe
from vfio_conform.report.diff import diff_run
from vfio_conform.report.diff_render import render_html, render_text
from vfio_conform.report.runs import RunData
from vfio_conform.results import ResultStore, RunMeta
from vfio_conform.results.environment import NOT_EXPOSED, DeviceEnvironment, Environment, changes, of_run

BDF = "0000:00:04.0"


def _module(host: FakeHost, bus: str, driver: str, module: str, version: str | None, src: str) -> None:
    mod = host.sys / "module" / module
    mod.mkdir(parents=True, exist_ok=True)
    if version is not None:
        (mod / "version").write_text(version + "\n")
    (mod / "srcversion").write_text(src + "\n")
    (host.sys / "bus" / bus / "drivers" / driver / "module").symlink_to(mod)


@pytest.fixture
def host(tmp_path: Path, monkeypatch) -> FakeHost:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))     # no lspci/ethtool: sysfs only
    return FakeHost(tmp_path)


def test_pci_device_module_identity_and_type1(host):
    host.pci(BDF, "vfio-pci", vendor=0x1B36, device=0x0005)
    _module(host, "pci", "vfio-pci", "vfio_pci", None, "ABCDEF0123")
    real = host.sys / "devices" / "pci0000:00" / BDF
    for name, value in (("subsystem_vendor", "0x1af4"), ("subsystem_device", "0x1100"),
                        ("class", "0x00ff00"), ("revision", "0x10")):
        (real / name).write_text(value + "\n")
    env = describe(BDF, host.sys, host.dev)
    assert (env.driver, env.module, env.version, env.srcversion) == \
        ("vfio-pci", "vfio_pci", NOT_EXPOSED, "ABCDEF0123")
    assert env.firmware == NOT_EXPOSED
    assert env.iommu_mode == "type1 container"
    assert env.pci_identity == (f"{BDF} vendor=0x1b36 device=0x0005 subsystem_vendor=0x1af4 "
                                "subsystem_device=0x1100 class=0x00ff00 revision=0x10")


def test_firmware_where_the_driver_exposes_it(host):
    host.pci(BDF, "mlx5_vfio_pci")
    (host.sys / "devices" / "pci0000:00" / BDF / "fw_version").write_text("22.39.1002\n")
    assert describe(BDF, host.sys, host.dev).firmware == "22.39.1002"


def test_noiommu_and_iommufd_modes(host):
    host.pci(BDF, "vfio-pci", group=9, noiommu=True)
    assert describe(BDF, host.sys, host.dev).iommu_mode == "no-IOMMU"
    host.pci("0000:00:05.0", "vfio-pci", group=10, cdev="vfio3")
    (host.dev / "iommu").touch()
    assert describe("0000:00:05.0", host.sys, host.dev).iommu_mode == "iommufd cdev"


def test_mdev_reports_its_driver_module_and_type(host):
    host.mdev(UUID)
    _module(host, "mdev", "mtty", "mtty", "0.1", "1234SRC")
    env = describe(UUID, host.sys, host.dev)
    assert (env.driver, env.module, env.version, env.srcversion) == ("mtty", "mtty", "0.1", "1234SRC")
    assert env.pci_identity == "mdev type mtty-2 on mtty"       # a virtual parent: no PCI identity
    assert env.iommu_mode == "type1 container"


def test_kernel_backend_describes_and_sim_says_sim(host):
    from vfio_conform.backends.kernel.backend import KernelBackend
    host.mdev(UUID)
    assert KernelBackend(host.sys, host.dev).describe_device(None, UUID).driver == "mtty"
    assert registry.get("sim").describe_device(None, "sim0") == DeviceEnvironment.uniform("sim0", "sim")


def _env(**kw) -> Environment:
    dev = DeviceEnvironment("0000:00:04.0", "vfio-pci", "vfio_pci", NOT_EXPOSED, "AAA", "1.0",
                            "00:04.0 Unclassified device", "type1 container")
    base = dict(kernel_release="6.12.117+deb12-amd64", kernel_cmdline="quiet", harness_version="0.1.0",
                profile_hash="abc", backend="kernel", devices=(dev,))
    base.update(kw)
    return Environment(**base)


def test_json_round_trip_and_changes():
    env = _env()
    assert Environment.from_json(env.to_json()) == env
    new = _env(kernel_release="6.13.0", devices=(DeviceEnvironment(
        "0000:00:09.0", "vfio-pci", "vfio_pci", NOT_EXPOSED, "BBB", "1.0", "00:04.0 Unclassified device",
        "iommufd cdev"),))
    assert changes(env, new) == ["kernel.release: 6.12.117+deb12-amd64 -> 6.13.0",
                                 "device.0.srcversion: AAA -> BBB",
                                 "device.0.iommu_mode: type1 container -> iommufd cdev"]
    assert changes(env, env) == [] and changes(None, env) == []


def _meta(session: str) -> RunMeta:
    return RunMeta(profile="p", backend="kernel", devices=BDF, driver="vfio-pci", kernel="6.12",
                   harness_version="0", host="h", session=session)


def test_stored_with_the_run_and_diffed(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    old, new = store.begin_run(_meta("a")), store.begin_run(_meta("b"))
    store.set_environment(old, _env())
    store.set_environment(new, _env(devices=(DeviceEnvironment(
        BDF, "vfio-pci", "vfio_pci", NOT_EXPOSED, "AAA", "2.0", "00:04.0 Unclassified device",
        "type1 container"),)))
    assert store.environment(old) == _env()
    assert store.run(new)["firmware"] == "2.0"
    d = diff_run(RunData(store.run(old), []), RunData(store.run(new), []))
    store.close()
    assert d.environment == ["device.0.firmware: 1.0 -> 2.0"]
    assert "environment changed: device.0.firmware: 1.0 -> 2.0" in render_text([d])
    assert "environment changed: device.0.firmware: 1.0 -&gt; 2.0" in render_html([d])


def test_old_store_reads_none_and_a_writer_adds_the_column(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO runs (id, session, profile, started, status) VALUES (1, 's', 'p', 1, 'finished')")
    db.commit()
    db.close()
    reader = ResultStore(path, readonly=True)
    assert reader.environment(1) is None and of_run(reader.run(1)) is None
    reader.close()
    writer = ResultStore(path)
    writer.set_environment(1, _env())
    assert writer.environment(1) == _env()
    writer.close()


def test_capture_per_profile_and_a_failing_backend_does_not_stop_the_run(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from vfio_conform.plugin.environment import capture
    from vfio_conform.profile import find_profile
    sim = find_profile("sim-p2p")
    ctx = SimpleNamespace(targets={"sim-p2p": SimpleNamespace(profile=sim, device_ids=("sim0", "sim1"))})
    (env,) = capture(ctx).values()
    assert env.backend == "sim" and [d.device for d in env.devices] == ["sim0", "sim1"]
    assert env.devices[1] == DeviceEnvironment.uniform("sim1", "sim") and env.profile_hash

    def broken(profile, device_id):
        raise OSError("sysfs went away")
    monkeypatch.setattr(registry.get("sim"), "describe_device", broken)
    (env,) = capture(ctx).values()
    assert env.devices[0].driver == "unknown (OSError: sysfs went away)"
