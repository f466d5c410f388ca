"""Extension points: backends, verify hooks and report formats by entry point, vendor plugin hooks,
and the profile schema as nested dataclasses (one list of keys)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from run_cli import vc
from vfio_conform.base import extensions
from vfio_conform.backends import registry
from vfio_conform.base.errors import ConfigError
from vfio_conform.targets.select import check_profile
from vfio_conform.profile import load_profile
from vfio_conform.profile.schema import Features, Migration, Profile, RegionPolicy, yaml_keys

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tests" / "plugins"
GOOD = "name: demo\nbackend: sim\ndevices: [sim0, sim1]\nmigration:\n  flags: [STOP_COPY, P2P]\n"


def _profile(tmp_path: Path, text: str) -> Profile:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_profile(path)


def _error(tmp_path: Path, text: str, check: bool = False) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        profile = _profile(tmp_path, text)
        if check:
            check_profile(profile)
    return info.value


# -- the registry: built-ins without metadata, third parties by entry point ---------------------------

def _with_entry_points(monkeypatch, *eps: EntryPoint) -> None:
    monkeypatch.setattr(extensions, "entry_points",
                        lambda group: [ep for ep in eps if ep.group == group])


def test_builtin_members_are_known_without_installed_entry_points(monkeypatch):
    _with_entry_points(monkeypatch)
    group = extensions.Group("vfio_conform.backends", dict(extensions.BACKENDS.builtin))
    assert group.names() == ["kernel", "sim", "vfio-user"]
    assert group.load("sim").name == "sim" and group.load("kernel").host_devices


def test_an_entry_point_adds_a_member_and_may_not_take_a_builtin_name(monkeypatch):
    mine = EntryPoint("mine", "vfio_conform.backends.sim.backend:BACKEND", "vfio_conform.backends")
    _with_entry_points(monkeypatch, mine)
    group = extensions.Group("vfio_conform.backends", {"sim": "vfio_conform.backends.sim.backend:BACKEND"})
    assert group.names() == ["mine", "sim"]
    with pytest.raises(extensions.ExtensionError, match="is named 'sim', registered as 'mine'"):
        group.load("mine")
    clash = EntryPoint("sim", "somewhere.else:BACKEND", "vfio_conform.backends")
    _with_entry_points(monkeypatch, clash)
    with pytest.raises(extensions.ExtensionError, match="'sim' is declared by somewhere.else:BACKEND"):
        group.names()


def test_unknown_backend_is_refused_at_load_with_the_known_ones(tmp_path):
    err = _error(tmp_path, GOOD.replace("backend: sim", "backend: tiny"))
    assert (err.line, err.field) == (2, "backend") and "'tiny' is not allowed" in str(err)
    assert "kernel, sim" in str(err)


def test_unknown_verify_hook_is_refused_at_load(tmp_path):
    err = _error(tmp_path, GOOD + "verify: sim-regionz\n")
    assert (err.line, err.field) == (6, "verify") and "mtty-uart" in str(err) and "sim-regions" in str(err)


def test_backend_config_of_another_backend_is_refused(tmp_path):
    err = _error(tmp_path, GOOD + "backend_config:\n  kernel: {}\n")
    assert (err.line, err.field) == (7, "backend_config.kernel")
    assert "a 'kernel' section needs backend: kernel" in str(err)


def test_kernel_backend_takes_no_keys_file_line(tmp_path):
    text = "name: k\nbackend: kernel\nmigration: {flags: [STOP_COPY]}\nbackend_config:\n  kernel:\n    path: group\n"
    err = _error(tmp_path, text, check=True)
    assert (err.line, err.field) == (6, "backend_config.kernel.path")
    assert "backend 'kernel' takes no key 'path'" in str(err)


def test_lab_section_needs_a_backend_with_host_devices(tmp_path):
    err = _error(tmp_path, GOOD + "lab: {mode: mdev, module: mtty}\n", check=True)
    assert (err.line, err.field) == (6, "lab") and "backend 'sim' does not" in str(err)
    text = "name: k\nbackend: kernel\nmigration: {flags: [STOP_COPY]}\nlab: {mode: mdev, module: mtty}\n"
    check_profile(_profile(tmp_path, text))


def test_open_device_goes_through_the_profiles_backend(tmp_path, monkeypatch):
    """One factory signature: open(profile, device_id, role), whatever the backend."""
    calls = []
    sim = registry.get("sim")
    real = type(sim).open
    monkeypatch.setattr(type(sim), "open", lambda self, p, d, r: calls.append((p.name, d, r)) or real(self, p, d, r))
    profile = _profile(tmp_path, GOOD + "backend_config:\n  sim: {flags: 3}\n")
    with registry.open_device(profile, "sim1", registry.role_of(1)) as device:
        assert device.name == "sim1"
    assert calls == [("demo", "sim1", "destination")]


# -- the schema mirrors the YAML -----------------------------------------------------------------------

def test_schema_sections_are_nested_records_whose_fields_are_the_yaml_keys(tmp_path):
    profile = _profile(tmp_path, GOOD + "features: {reset: false, dma_logging: true}\n")
    assert isinstance(profile.migration, Migration) and isinstance(profile.features, Features)
    assert profile.features == Features(reset=False, dma_logging=True)
    assert (profile.reset, profile.dma_logging, profile.flags) == (False, True, profile.migration.flags)
    assert "path" not in yaml_keys(Profile) and "lines" not in yaml_keys(Profile)
    assert {"migration", "features", "backend_config", "regions"} <= set(yaml_keys(Profile))
    assert "index" not in yaml_keys(RegionPolicy) and "access" in yaml_keys(RegionPolicy)
    err = _error(tmp_path, GOOD + "features: {resett: true}\n")
    assert err.field == "features.resett" and "dma_logging, reset" in str(err)
    err = _error(tmp_path, GOOD.replace("  flags:", "  flagz: [STOP_COPY]\n  flags:"))
    assert err.field == "migration.flagz" and ", ".join(sorted(yaml_keys(Migration))) in str(err)


def test_every_schema_field_is_documented():
    """Each YAML key is named in its record's docstring (the JSON-Schema export reads them)."""
    from vfio_conform.profile import schema
    assert schema.field_docs(schema.Walk)["steps"] == "actions per walk."
    assert schema.field_docs(schema.Match)["device_id"] == "PCI ids (ints)."
    for cls in (Profile, Migration, Features, schema.Match, schema.KnownIssue, schema.Timeouts,
                schema.Walk, RegionPolicy, schema.Regions, schema.HazardGate, schema.LabTarget):
        docs = schema.field_docs(cls)
        missing = [k for k in yaml_keys(cls) if not docs.get(k)]
        assert not missing, f"{cls.__name__} does not document {missing}"
        assert all(f.type for f in dataclasses.fields(cls))


# -- vendor hooks (plugin/hookspecs.py), with the sim and a plugin loaded by -p --------------------

def _vendor_env(tmp_path: Path, **extra: str) -> dict:
    return {"VC_TINY_VENDOR_LOG": str(tmp_path / "vendor.log"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGINS / "vc_tiny_verify"),
                                           os.environ.get("PYTHONPATH", "")]), **extra}


def test_vendor_plugin_hooks_are_called_on_open_verify_and_close(tmp_path):
    out = vc("run", "--profile", "sim-p2p", "--no-store", "-n", "0", "--", "-k", "test_round_trip_verified",
             "-p", "vc_tiny_verify.vendor", **_vendor_env(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    log = (tmp_path / "vendor.log").read_text().splitlines()
    assert log == ["opened source sim0 sim-p2p", "opened destination sim1 sim-p2p",
                   "verify 101 sim1 sim-p2p sim0",
                   "closing source sim0 sim-p2p", "closing destination sim1 sim-p2p"], log


def test_a_vendor_verify_problem_fails_the_round_trip(tmp_path):
    out = vc("run", "--profile", "sim-p2p", "--no-store", "-n", "0", "--", "-k", "test_round_trip_verified",
             "-p", "vc_tiny_verify.vendor", **_vendor_env(tmp_path, VC_TINY_VENDOR_FAIL="1"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "vendor check: sim1 does not hold tag 101" in out.stdout + out.stderr


def test_unknown_report_format_is_a_one_line_error(tmp_path):
    out = vc("report", "--format", "pdf", "--store", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "x"))
    assert out.returncode == 2 and "unknown report 'pdf'" in out.stderr and "html" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x").exists()


# -- the proof: out-of-tree packages, installed by entry point into a fresh venv, run the whole suite ---

@pytest.fixture(scope="module")
def tiny_venv(tmp_path_factory) -> Path:
    """A venv seeing the system packages, with this checkout (editable) and the two tiny packages."""
    base = tmp_path_factory.mktemp("venv")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    sources = []
    for name in ("vc_tiny_backend", "vc_tiny_verify"):       # copied: the build leaves files behind
        shutil.copytree(PLUGINS / name, base / name)
        sources.append(str(base / name))
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                          "-e", str(ROOT), *sources], capture_output=True, text=True, timeout=600)
    if pip.returncode:
        pytest.fail(f"pip install into the venv failed: {pip.stdout}{pip.stderr}")
    return venv


def _venv_run(venv: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # only what the venv installed
    env.update(extra)
    return subprocess.run([str(venv / "bin" / "vfio-conform"), *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=venv.parent)


def test_out_of_tree_backend_and_hooks_run_the_whole_suite(tiny_venv, tmp_path):
    store = tmp_path / "results.sqlite"
    out = _venv_run(tiny_venv, "run", "--profile", str(PLUGINS / "tiny.yaml"), "-n", "2", "-q",
                    "--reports", str(tmp_path / "reports"), "--store", str(store),
                    VC_TINY_VENDOR_LOG=str(tmp_path / "vendor.log"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    db = sqlite3.connect(store)
    assert db.execute("SELECT backend, driver, devices FROM runs").fetchall() == [("tiny", "tiny-driver",
                                                                                   "tiny0,tiny1")]
    outcomes = dict(db.execute("SELECT outcome, count(*) FROM results GROUP BY outcome").fetchall())
    assert outcomes.get("pass", 0) > 100 and not outcomes.get("fail") and not outcomes.get("infra-error")
    verified = db.execute("SELECT outcome FROM results WHERE test_id LIKE 'test_round_trip_verified%'").fetchall()
    assert verified == [("pass",)]                      # the tiny-bar2 hook ran (verify: none would skip)
    log = (tmp_path / "vendor.log").read_text()
    assert "opened source tiny0 tiny" in log and "verify 101 tiny1 tiny tiny0" in log
    report = _venv_run(tiny_venv, "report", "--format", "json-summary", "--store", str(store),
                       "--out", str(tmp_path / "summary.json"))
    assert report.returncode == 0, report.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary[0]["profile"] == "tiny" and summary[0]["outcomes"] == outcomes


def test_out_of_tree_backend_validates_its_own_section(tiny_venv, tmp_path):
    bad = tmp_path / "tiny-bad.yaml"
    bad.write_text((PLUGINS / "tiny.yaml").read_text().replace("tiny: {flags: 3, state_size: 4096}",
                                                               "tiny: {flags: 3, colour: 4096}"))
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "colour" in text)
    out = _venv_run(tiny_venv, "run", "--profile", str(bad), "--no-store")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith(
        f"tiny-bad.yaml:{line}: backend_config.tiny.colour: unknown tiny key 'colour' (expected one of: flags, state_size)")
    out = _venv_run(tiny_venv, "run", "--profile", str(PLUGINS / "tiny.yaml"), "--no-store", "--device", "sim0")
    assert out.returncode == 2 and "tiny device 'sim0' is not named tinyN" in out.stderr


def test_entry_points_are_read_once_per_process(monkeypatch):
    """Reading entry points scans every installed distribution: profile loads and backend lookups
    ask for them many times a run, the metadata is read once."""
    reads = []
    mine = EntryPoint("mine", "vfio_conform.backends.sim.backend:BACKEND", "vfio_conform.backends")

    def counting(group):
        reads.append(group)
        return [mine] if group == "vfio_conform.backends" else []
    monkeypatch.setattr(extensions, "entry_points", counting)
    group = extensions.Group("vfio_conform.backends", dict(extensions.BACKENDS.builtin))
    for _ in range(5):
        assert "mine" in group.names()
        extensions.VERIFY.names()
    assert sorted(reads) == ["vfio_conform.backends", "vfio_conform.verify"]
