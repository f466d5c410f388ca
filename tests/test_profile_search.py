"""Profiles are found in ./profiles, then $VFIO_CONFORM_PROFILES, then the built-in ones; `profiles`
says where each came from, which it shadows, and prints flags by name. Results and reports go to
./reports of the current directory (or beside the store read), never into the package."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from run_cli import ROOT, env
from vfio_conform.base.constants import PROFILES_DIR
from vfio_conform.base.errors import ConfigError
from vfio_conform.profile import find_all, find_profile, search_path


def _copy(dest: Path, base: str, name: str, **changes) -> Path:
    data = yaml.safe_load((PROFILES_DIR / f"{base}.yaml").read_text())
    data.update(name=name, **changes)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cli(cwd: Path, *args, **extra_env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vfio_conform", *map(str, args)], cwd=cwd,
                          env=env(**extra_env), capture_output=True, text=True, timeout=300)


def test_search_order_local_env_builtin(tmp_path, monkeypatch):
    local = _copy(tmp_path / "work" / "profiles", "sim-p2p", "sim-p2p", devices=["sim0"])
    env_a = _copy(tmp_path / "a", "sim-p2p", "sim-p2p")           # hidden by the local one
    vendor = _copy(tmp_path / "b", "sim-stop-copy", "vendor-x")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("VFIO_CONFORM_PROFILES", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert [(s.kind, s.directory) for s in search_path()] == [
        ("local", tmp_path / "work" / "profiles"), ("env", tmp_path / "a"), ("env", tmp_path / "b"),
        ("built-in", PROFILES_DIR)]
    assert find_profile("sim-p2p").path == str(local)
    assert find_profile("vendor-x").path == str(vendor)
    assert find_profile("sim-precopy").path == str(PROFILES_DIR / "sim-precopy.yaml")
    found = {f.profile.name: f for f in find_all()[0]}
    assert found["sim-p2p"].source.kind == "local"
    assert [(s.kind, p) for s, p in found["sim-p2p"].shadows] == [
        ("env", str(env_a)), ("built-in", str(PROFILES_DIR / "sim-p2p.yaml"))]
    assert found["vendor-x"].source.kind == "env" and found["sim-v1-mmap"].source.kind == "built-in"


def test_profile_found_by_its_name_field_in_an_earlier_directory(tmp_path, monkeypatch):
    path = _copy(tmp_path / "profiles", "sim-p2p", "sim-p2p")
    path.rename(tmp_path / "profiles" / "renamed.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VFIO_CONFORM_PROFILES", raising=False)
    assert find_profile("sim-p2p").path == str(tmp_path / "profiles" / "renamed.yaml")


def test_env_entry_that_is_not_a_directory_is_a_usage_error(tmp_path):
    proc = _cli(tmp_path, "profiles", VFIO_CONFORM_PROFILES=str(tmp_path / "missing"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"vfio-conform: error: VFIO_CONFORM_PROFILES: {tmp_path / 'missing'}: "
                                   f"not a directory (a list of profile directories separated by "
                                   f"{os.pathsep!r})")



def test_env_entry_that_is_not_a_directory_is_refused_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("VFIO_CONFORM_PROFILES", f"{tmp_path}{os.pathsep}{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match="nope: not a directory"):
        search_path()
    with pytest.raises(ConfigError, match="nope: not a directory"):
        find_profile("sim-p2p")


def test_profiles_command_says_where_and_shadowing_and_flag_names(tmp_path):
    local = _copy(tmp_path / "profiles", "sim-p2p", "sim-p2p")
    vendor = _copy(tmp_path / "vendor", "sim-precopy", "vendor-pc")
    proc = _cli(tmp_path, "profiles", VFIO_CONFORM_PROFILES=str(tmp_path / "vendor"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "MigFlag" not in out
    assert out.splitlines()[0] == (f"profile search path (first match wins): local {tmp_path / 'profiles'}; "
                                   f"env {tmp_path / 'vendor'}; built-in {PROFILES_DIR}")
    assert re.search(rf"^sim-p2p +sim +flags=STOP_COPY\|P2P +devices=sim0, sim1 +local: {re.escape(str(local))}\n"
                     rf" +shadows the built-in profile sim-p2p \({re.escape(str(PROFILES_DIR / 'sim-p2p.yaml'))}\)$",
                     out, re.M), out
    assert re.search(rf"^vendor-pc +sim +flags=STOP_COPY\|PRE_COPY .* env: {re.escape(str(vendor))}$", out, re.M)
    assert re.search(r"^mtty +kernel +flags=STOP_COPY\|P2P\|PRE_COPY .* built-in: ", out, re.M)
    assert re.search(r"^qemu-edu +kernel +flags=none ", out, re.M)
    assert len(re.findall(r"^sim-p2p ", out, re.M)) == 1


def test_run_uses_the_local_profile_and_writes_reports_in_the_current_directory(tmp_path):
    """From a directory outside the checkout: ./profiles is used and results land in ./reports."""
    _copy(tmp_path / "profiles", "sim-stop-copy", "local-only")
    proc = _cli(tmp_path, "run", "--profile", "local-only", "-q", "--", "-k", "test_arc and RUNNING")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert (tmp_path / "reports" / "results.sqlite").exists()
    assert f"results -> {tmp_path / 'reports'}" in proc.stdout
    junit = re.search(r"^  JUnit:\s+(\S+)$", proc.stdout, re.M).group(1)
    assert Path(junit).is_relative_to(tmp_path / "reports")
    # `report` and `results` read ./reports of the current directory too
    rep = _cli(tmp_path, "report", "latest")
    assert rep.returncode == 0, rep.stderr
    assert Path(rep.stdout.split()[1]).parent == tmp_path / "reports"


def test_plain_pytest_store_defaults_to_the_current_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "suites"),
                           "--rootdir", str(ROOT / "vfio_conform"), "-p", "no:cacheprovider", "-q",
                           "--vc-profile", "sim-stop-copy", "-k", "test_arc and RUNNING"],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "reports" / "results.sqlite").exists()
    assert not (ROOT / "vfio_conform" / "reports").exists()


def test_report_and_diff_write_into_reports_of_the_current_directory(tmp_path):
    """Readers never write beside the store they read unless told to (--out, --html)."""
    store = tmp_path / "elsewhere" / "results.sqlite"
    for _ in range(2):
        proc = _cli(ROOT, "run", "--profile", "sim-stop-copy", "-q", "--reports", tmp_path / "r",
                    "--store", store, "--", "-k", "test_arc and RUNNING")
        assert proc.returncode == 0, proc.stdout[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in store.parent.iterdir())
    rep = _cli(work, "report", "latest", "--store", store)
    assert rep.returncode == 0, rep.stderr
    out = Path(re.search(r"^report: (\S+)", rep.stdout, re.M).group(1))
    assert out.parent == work / "reports" and out.exists()
    dif = _cli(work, "diff", "1", "2", "--store", store)
    assert dif.returncode == 0, dif.stdout + dif.stderr
    html = Path(re.search(r"^diff: (\S+)$", dif.stdout, re.M).group(1))
    assert html.parent == work / "reports" and html.exists()
    assert sorted(p.name for p in store.parent.iterdir()) == before
