"""Where the vfio-user test target's source comes from, and what setup says without one.

A fresh clone with nothing beside it must set up: without a libvfio-user source the build step
prints one line saying the vfio-user tests will be skipped and why, and exits 0; CI (which sets
VC_REQUIRE_VFIO_USER) and a source named explicitly that does not exist get exit 2.
"""
from __future__ import annotations

import http.server
import os
import tarfile
import threading
from pathlib import Path

import pytest

from vfio_conform.backends.vfio_user import build as build_mod

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT.parent / "shared" / "third_party" / f"libvfio-user-{build_mod.DEFAULT_COMMIT}.tar.gz"
if not SNAPSHOT.is_file():      # a worktree beside the main checkout
    SNAPSHOT = Path("/work/shared/third_party") / SNAPSHOT.name


@pytest.fixture
def nothing_beside(tmp_path, monkeypatch):
    """No source anywhere: an empty cache, no snapshot, an upstream that refuses connections."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in (build_mod.SRC_ENV, build_mod.REQUIRE_ENV, "VC_REQUIRE_REPORT_DEPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VC_LIBVFIO_USER_TARBALL", str(tmp_path / "absent" / SNAPSHOT.name))
    monkeypatch.setattr(build_mod, "UPSTREAM", "http://127.0.0.1:9/nutanix/libvfio-user")
    return tmp_path


def test_without_a_source_one_line_says_the_tests_will_be_skipped(nothing_beside, capsys):
    assert build_mod.main([]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    (line,) = out.splitlines()
    assert line.startswith("install-vfio-user: the vfio-user tests will be skipped: no libvfio-user source")
    assert f"${build_mod.SRC_ENV} is not set" in line and "127.0.0.1:9" in line


def test_ci_requires_the_source(nothing_beside, monkeypatch, capsys):
    monkeypatch.setenv(build_mod.REQUIRE_ENV, "1")
    assert build_mod.main([]) == 2
    assert "install-vfio-user: error: no libvfio-user source" in capsys.readouterr().err


def test_a_named_source_that_does_not_exist_is_bad_input(nothing_beside, monkeypatch, capsys):
    monkeypatch.setenv(build_mod.SRC_ENV, str(nothing_beside / "no-such-tree"))
    assert build_mod.main([]) == 2
    assert f"${build_mod.SRC_ENV}=" in capsys.readouterr().err


def test_the_pinned_commit_is_fetched_from_upstream_once(nothing_beside, monkeypatch):
    """Where the network allows, the pinned commit's archive is downloaded into the cache."""
    archive = nothing_beside / "serve" / "nutanix" / "libvfio-user" / "archive"
    archive.mkdir(parents=True)
    payload = archive / f"{build_mod.DEFAULT_COMMIT}.tar.gz"
    with tarfile.open(payload, "w:gz") as tar:
        tar.add(__file__, arcname="libvfio-user/meson.build")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(nothing_beside / "serve"), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(build_mod, "UPSTREAM", f"http://127.0.0.1:{server.server_port}/nutanix/libvfio-user")
        got = build_mod.find_source()
    finally:
        server.shutdown()
        server.server_close()
    assert got == nothing_beside / "cache" / "vfio-conform" / "vfio-user" / "src" / SNAPSHOT.name
    assert got.read_bytes() == payload.read_bytes()
    assert build_mod.find_source() == got          # the cached copy: no second download


def test_a_source_tree_in_the_env_is_built(nothing_beside, monkeypatch, capsys):
    """VFIO_USER_SRC names an unpacked source tree: it is built out of tree into the cache."""
    if not SNAPSHOT.is_file():
        pytest.skip(f"{SNAPSHOT} not present (the libvfio-user snapshot)")
    with tarfile.open(SNAPSHOT) as tar:
        tar.extractall(nothing_beside / "src", filter="data")
    tree = nothing_beside / "src" / "libvfio-user"
    monkeypatch.setenv(build_mod.SRC_ENV, str(tree))
    assert build_mod.main([]) == 0, capsys.readouterr()
    server = Path(capsys.readouterr().out.strip())
    assert server == build_mod.server_path(build_mod.DEFAULT_COMMIT) and os.access(server, os.X_OK)
    assert server.is_relative_to(nothing_beside / "cache")



def test_a_cached_build_needs_no_source(nothing_beside, capsys):
    """Setup run again (idempotent): the sample server built before is found without any source."""
    server = build_mod.server_path(build_mod.DEFAULT_COMMIT)
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    assert build_mod.main([]) == 0
    assert capsys.readouterr().out.strip() == str(server)


def test_the_build_script_without_the_package_installed_says_so_in_one_line(tmp_path):
    """Run on a machine where the package's dependencies are not installed yet (a fresh one, before
    pip): one line naming what is missing and the fix, exit 2, not a traceback."""
    import subprocess
    import sys
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PATH=f"{venv / 'bin'}:{os.environ['PATH']}", XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = subprocess.run(["sh", str(ROOT / "scripts" / "install-vfio-user.sh")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 2, out.stderr
    said = [line for line in out.stderr.splitlines() if "the Python package cannot be imported" in line]
    assert len(said) == 1 and "No module named" in said[0] and "pip install -e" in said[0], out.stderr
    assert "Traceback" not in out.stderr


def test_setup_installs_the_package_before_anything_runs_it():
    """setup.sh's steps that run the package's tools come after its pip install (on a fresh machine
    they failed: the package imports pytest, not installed yet)."""
    text = (ROOT / "scripts" / "setup.sh").read_text()
    pip = text.index('python3 -m pip install -q -e "$ROOT')
    for step in ('scripts/install-vfio-user.sh"', "vfio_conform.tools.header_check", "tests/kunit_tools.py"):
        assert pip < text.index(step), f"setup.sh runs {step} before installing the package"
