"""The project works from a wheel in a fresh venv, from a checkout under a path with spaces, and the
README's quick start works from a clone under /tmp."""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Not copied with the checkout: history, results, build output and caches.
IGNORE = shutil.ignore_patterns(".git", "reports", "build", "dist", "__pycache__", ".hypothesis",
                                ".pytest_cache", "*.egg-info")


def _clean_env(**extra: str) -> dict:
    """The environment without this checkout on PYTHONPATH (the installed package must stand alone)."""
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VFIO_CONFORM_STORE",
                                                           "VFIO_CONFORM_PROFILES", "PYTEST_ADDOPTS")}
    out.update(extra)
    return out


def _run(argv, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _check_main_job(proc: subprocess.CompletedProcess, reports: Path) -> None:
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "SKIPPED [" not in out
    row = next(line for line in out.splitlines() if line.startswith("sim-p2p "))
    assert row.split()[-2] == "CONFORMANT"
    assert (reports / "results.sqlite").exists()
    assert _suite_folders(reports / "results.sqlite") == {"suites/consumers", "suites/data", "suites/depth",
                                                          "suites/fsm", "suites/regions", "suites/v1"}
    for label in ("HTML report", "JUnit", "JSON summary"):
        path = Path(re.search(rf"^  {label}:\s+(.+)$", out, re.M).group(1))
        assert path.exists() and path.is_relative_to(reports), (label, path)


def _suite_folders(store: Path) -> set[str]:
    """The `suites/<area>` every test id of the store starts with (the same from a wheel and a checkout)."""
    with sqlite3.connect(store) as db:
        return {"/".join(row[0].split("/")[:2]) for row in db.execute("SELECT nodeid FROM results")}


def test_pyproject_lists_every_package_and_maps_the_top_level_folders():
    """The wheel's package list (pyproject.toml) names every package of the checkout: vfio_conform's,
    and the top-level suites/ and fixtures/ mapped to vfio_conform.suites and vfio_conform.fixtures."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {"suites": "vfio_conform.suites", "fixtures": "vfio_conform.fixtures"}
    found = {"vfio_conform.profiles"}
    for top in ("vfio_conform", *mapped):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            found.add(".".join((mapped.get(parts[0], parts[0]), *parts[1:])))
    assert sorted(config["packages"]) == sorted(found)
    assert config["package-dir"] == {"vfio_conform.profiles": "profiles", **{v: k for k, v in mapped.items()}}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this checkout and its dependencies (from the index)."""
    base = tmp_path_factory.mktemp("wheel")
    env = _clean_env()
    src = base / "src"          # a clean copy: no stale build/ of the checkout ends up in the wheel
    shutil.copytree(ROOT, src, ignore=IGNORE)
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", src],
                 base, env)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (base / "dist").glob("vfio_conform-*.whl")
    made = _run([sys.executable, "-m", "venv", base / "venv"], base, env)
    assert made.returncode == 0, made.stderr
    inst = _run([base / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel], base, env)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    return base / "venv"


def test_wheel_ships_suites_profiles_and_runs_from_an_empty_directory(venv, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    env = _clean_env()
    site = _run([venv / "bin" / "python", "-c", "import vfio_conform, os; print(os.path.dirname("
                 "vfio_conform.__file__))"], work, env)
    package = Path(site.stdout.strip())
    assert package.is_relative_to(venv), site.stdout + site.stderr   # not this checkout
    assert (package / "suites.ini").exists() and (package / "profiles" / "sim-p2p.yaml").exists()
    assert (package / "suites" / "fsm" / "test_arcs.py").exists() and (package / "fixtures" / "devices.py").exists()

    prof = _run([venv / "bin" / "vfio-conform", "profiles"], work, env)
    assert prof.returncode == 0, prof.stderr
    assert re.search(rf"^sim-p2p +sim +flags=STOP_COPY\|P2P .* built-in: {re.escape(str(package))}/profiles/"
                     r"sim-p2p.yaml$", prof.stdout, re.M), prof.stdout

    proc = _run([venv / "bin" / "vfio-conform", "run", "--profile", "sim-p2p", "-q"], work, env)
    _check_main_job(proc, work / "reports")
    assert not (package / "reports").exists() and not (package.parent / "reports").exists()
    assert sorted(os.listdir(work)) == ["reports"]      # nothing else in the working directory
    res = _run([venv / "bin" / "vfio-conform", "results"], work, env)
    assert res.returncode == 0 and "sim-p2p" in res.stdout, res.stdout + res.stderr
    table = _run([venv / "bin" / "python", "-m", "vfio_conform.profile.fields"], work, env)
    guide = (ROOT / "docs" / "profile-guide.md").read_text()        # the wheel's table is the checkout's
    assert table.returncode == 0 and table.stdout.strip() in guide, table.stdout[-2000:] + table.stderr
    write = _run([venv / "bin" / "python", "-m", "vfio_conform.profile.fields", "--write"], work, env)
    assert write.returncode == 2 and "give the guide's path" in write.stderr, write.stderr


def test_the_readme_plain_pytest_command_runs_the_wheels_suites(venv, tmp_path):
    """`python3 -m pytest --pyargs vfio_conform.suites --vc-profile X` from any directory."""
    command = next(c for c in _readme_plain_pytest() if "--pyargs" in c).split()
    assert command[:3] == ["python3", "-m", "pytest"]
    work = tmp_path / "any"
    work.mkdir()
    proc = _run([venv / "bin" / "python", *command[1:], "-q"], work, _clean_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"^\d+ passed, \d+ skipped", proc.stdout.splitlines()[-1]), proc.stdout[-500:]
    with sqlite3.connect(work / "reports" / "results.sqlite") as db:    # ids relative to the package's suites
        files = {row[0].split("::")[0] for row in db.execute("SELECT nodeid FROM results")}
    assert {"fsm/test_arcs.py", "data/test_stream.py"} <= files, sorted(files)[:5]
    assert sorted(os.listdir(work)) == ["reports"]      # no .pytest_cache, no .hypothesis


def test_checkout_under_a_path_with_spaces(tmp_path):
    copy = tmp_path / "dir with space" / "vfio conform"
    shutil.copytree(ROOT, copy, ignore=IGNORE)
    env = _clean_env(PYTHONPATH=str(copy))
    proc = _run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-p2p", "-q"], copy, env)
    _check_main_job(proc, copy / "reports")
    assert f"results -> {copy / 'reports'}" in proc.stdout
    prof = _run([sys.executable, "-m", "vfio_conform", "profiles"], copy, env)
    assert prof.returncode == 0 and f"built-in: {copy}/profiles/sim-p2p.yaml" in prof.stdout


def _readme_command(heading: str) -> str:
    """The one indented command under a bold heading of the README's quick start."""
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start"):text.index("\n## ", text.index("## Quick start") + 3)]
    part = quick[quick.index(f"**{heading}**"):]
    commands = re.findall(r"^    (\S.*)$", part.split("\n**", 1)[0], re.M)
    assert len(commands) == 1, f"{heading}: {commands}"
    return commands[0]


def _readme_plain_pytest() -> list[str]:
    """The indented commands of the README's section on running the suites with plain pytest."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Running the suites with plain pytest")
    part = text[start:text.index("\n## ", start + 3)]
    return re.findall(r"^    (\S.*)$", part, re.M)


def test_readme_quick_start_from_a_clone_under_tmp():
    main_job = _readme_command("Main job")
    assert main_job == "python3 -m vfio_conform run"
    assert _readme_command("Tests") == "python3 -m pytest tests -n 2"
    clone = Path(tempfile.mkdtemp(prefix="vc-quickstart-", dir="/tmp")) / "vfio-conform"
    try:
        done = _run(["git", "clone", "-q", ROOT, clone], "/tmp", _clean_env())
        assert done.returncode == 0, done.stderr
        env = _clean_env(PYTHONPATH=str(clone))
        # the README's command, on one profile to keep the test quick
        proc = _run([*main_job.split(), "--profile", "sim-p2p", "-q"], clone, env)
        _check_main_job(proc, clone / "reports")
        where = _run(["python3", "-c", "import vfio_conform; print(vfio_conform.__file__)"], clone, env)
        assert where.stdout.strip() == str(clone / "vfio_conform" / "__init__.py")
        # the README's plain-pytest command in a checkout: the same test ids as `vfio-conform run`
        (checkout_command,) = [c for c in _readme_plain_pytest() if "--pyargs" not in c]
        (clone / "reports" / "results.sqlite").unlink()
        plain = _run([*checkout_command.split(), "-q"], clone, env)
        assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
        assert _suite_folders(clone / "reports" / "results.sqlite") == {
            "suites/consumers", "suites/data", "suites/depth", "suites/fsm", "suites/regions", "suites/v1"}
        left = _run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], clone, env)
        assert [line for line in left.stdout.splitlines() if not line[3:].startswith("reports/")] == []
    finally:
        shutil.rmtree(clone.parent, ignore_errors=True)
