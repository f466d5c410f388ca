"""A fleet on labgrid: a real coordinator and two exporters (two simulated hosts), a place and a
reservation per device (or pair), a booked run on each host into one PostgreSQL store, one report."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from run_cli import popen, vc

LABGRID_VERSION = "26.0.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vfio-conform" / "labgrid"


@pytest.fixture(scope="session")
def labgrid() -> dict:
    """How to run labgrid's commands: an installed labgrid, else a private copy (never on sys.path
    of the tests, so labgrid's own pytest plugin stays out of this run)."""
    if shutil.which("labgrid-coordinator"):
        return {"prefix": [], "env": {}}
    if not (CACHE / "labgrid").is_dir():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(CACHE),
                               f"labgrid=={LABGRID_VERSION}"], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"cannot install labgrid: {done.stderr.strip()[-500:]}")
    return {"prefix": [sys.executable, str(CACHE / "bin") + "/"], "env": {"PYTHONPATH": str(CACHE)}}


def _cmd(lg: dict, name: str) -> list[str]:
    if not lg["prefix"]:
        return [shutil.which(name)]
    return [lg["prefix"][0], lg["prefix"][1] + name]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def test_fleet_books_places_runs_two_hosts_into_one_store(labgrid, pg_server, tmp_path):
    store = pg_server("fleet")
    port = _free_port()
    coordinator = f"127.0.0.1:{port}"
    lg_env = {**os.environ, **labgrid["env"]}
    client_cmd = " ".join(_cmd(labgrid, "labgrid-client"))
    client = lambda *a: subprocess.run([*_cmd(labgrid, "labgrid-client"), "-x", coordinator, *a],  # noqa: E731
                                       capture_output=True, text=True, env=lg_env, timeout=60)
    inventories = {
        "hostA": "devices:\n  - {name: a0, sim: sim0, profile: sim-stop-copy}\n",
        "hostB": "devices:\n  - {name: b0, sim: sim0, profile: sim-p2p, peer: b1}\n"
                 "  - {name: b1, sim: sim1, profile: sim-p2p}\n",
    }
    procs = []
    try:
        procs.append(subprocess.Popen([*_cmd(labgrid, "labgrid-coordinator"), "-l", coordinator], cwd=tmp_path,
                                      env=lg_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        paths = {}
        for host, text in inventories.items():
            inv = tmp_path / f"{host}.yaml"
            inv.write_text(f"lease_dir: {tmp_path}/leases-{host}\n" + text)
            paths[host] = inv
            cfg = vc("fleet", "exporter-config", "--inventory", str(inv))
            assert cfg.returncode == 0, cfg.stderr
            (tmp_path / f"exporter-{host}.yaml").write_text(cfg.stdout)
            procs.append(subprocess.Popen([*_cmd(labgrid, "labgrid-exporter"), "-c", coordinator, "--name",
                                           host, str(tmp_path / f"exporter-{host}.yaml")], env=lg_env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait_for(lambda: client("resources").stdout.count("NetworkService") == 2, 60, "both exporters")
        for host, inv in paths.items():
            made = vc("fleet", "places", "--coordinator", coordinator, "--inventory", str(inv),
                      "--host", host, VFIO_CONFORM_LABGRID_CLIENT=client_cmd, **labgrid["env"])
            assert made.returncode == 0, made.stdout + made.stderr
        places = client("places").stdout.split()
        assert sorted(places) == ["hostA-a0", "hostB-b0_b1"]
        assert "host=hostB, profile=sim-p2p, unit=b0_b1" in client("-p", "hostB-b0_b1", "show").stdout

        # another lab user holds hostB's pair: hostB's run waits for it, hostA's runs at once
        taken = client("-p", "hostB-b0_b1", "acquire")
        assert taken.returncode == 0, taken.stderr
        runs = {host: popen("fleet", "run", "--coordinator", coordinator, "--inventory", str(inv),
                            "--host", host, "--", "--store", store, "-q", "--", "-k", "test_arc and STOP",
                            VFIO_CONFORM_LABGRID_CLIENT=client_cmd, **labgrid["env"])
                for host, inv in paths.items()}
        out_a, _ = runs["hostA"].communicate(timeout=300)
        assert runs["hostA"].returncode == 0, out_a
        assert "hostA: booked hostA-a0" in out_a
        assert runs["hostB"].poll() is None                  # still waiting for its reservation
        assert client("-p", "hostB-b0_b1", "release").returncode == 0
        out_b, _ = runs["hostB"].communicate(timeout=300)
        assert runs["hostB"].returncode == 0, out_b
        assert "hostB: booked hostB-b0_b1" in out_b

        # every place and reservation is given back
        assert "acquired: " not in client("-p", "hostA-a0", "show").stdout.replace("acquired: None", "")
        assert "Reservation" not in client("reservations").stdout
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    # one store over the fleet: a run per host, and one report over both
    from vfio_conform.results import open_store
    st = open_store(store, readonly=True)
    try:
        rows = st.runs(limit=10)
    finally:
        st.close()
    assert sorted((r["host"], r["profile"], r["status"]) for r in rows) == [
        ("hostA", "sim-stop-copy", "finished"), ("hostB", "sim-p2p", "finished")]
    report = tmp_path / "fleet.html"
    out = vc("report", *[str(r["id"]) for r in rows], "--store", store, "--out", str(report))
    assert out.returncode == 0, out.stdout + out.stderr
    html = report.read_text()
    assert "hostA" in html and "hostB" in html
