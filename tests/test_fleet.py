"""A fleet on labgrid: a real coordinator and two exporters (two simulated hosts) on loopback.

Places carry the devices' description; a held place is waited for (and its holder shown), as long
as --wait says; SIGTERM while waiting or while the run goes releases everything, ends the run
`terminated`, exits 3 and leaves no labgrid-client behind; a lab's own place (--place, $LG_PLACE)
and a tag match book as well as the harness's places; $LG_COORDINATOR is honoured; two hosts'
runs go into one PostgreSQL store and each host publishes its own report.

labgrid comes from the `fleet` extra: scripts/install-labgrid.sh (run by setup.sh) installs it into
~/.cache/vfio-conform/labgrid, kept off the tests' own path (labgrid's pytest plugin stays out).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from run_cli import popen, sqlite_rows, vc

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vfio-conform" / "labgrid"
INVENTORIES = {
    "hostA": "devices:\n  - {name: a0, sim: sim0, profile: sim-stop-copy}\n",
    "hostB": "devices:\n  - {name: b0, sim: sim0, profile: sim-p2p, peer: b1}\n"
             "  - {name: b1, sim: sim1, profile: sim-p2p}\n",
}
ONE_TEST = ["-q", "--", "-k", "test_arc and RUNNING"]


def _labgrid() -> dict:
    """How to run labgrid's commands: installed on PATH, else scripts/install-labgrid.sh's copy."""
    if shutil.which("labgrid-coordinator"):
        return {"cmd": lambda name: [shutil.which(name)], "env": {}}
    if not (CACHE / "bin" / "labgrid-coordinator").exists():
        pytest.fail("labgrid is not installed: run scripts/install-labgrid.sh (setup.sh does)")
    return {"cmd": lambda name: [sys.executable, str(CACHE / "bin" / name)], "env": {"PYTHONPATH": str(CACHE)}}


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


class Lab:
    """A coordinator, one exporter per host, and the harness's places."""

    def __init__(self, tmp: Path):
        self.lg = _labgrid()
        self.tmp = tmp
        self.coordinator = f"127.0.0.1:{_free_port()}"
        self.env = {**os.environ, **self.lg["env"]}
        self.procs: list[subprocess.Popen] = []
        self.inventories: dict[str, Path] = {}
        # labgrid's private copy goes on labgrid-client's path only, never on the harness's
        prefix = [f"{k}={v}" for k, v in self.lg["env"].items()]
        self.vc_env = {"VFIO_CONFORM_LABGRID_CLIENT": " ".join(["env", *prefix, *self.lg["cmd"]("labgrid-client")])}

    def client(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.lg["cmd"]("labgrid-client"), "-x", self.coordinator, *args],
                              capture_output=True, text=True, env=self.env, timeout=60)

    def start(self) -> None:
        self.procs.append(subprocess.Popen([*self.lg["cmd"]("labgrid-coordinator"), "-l", self.coordinator],
                                           cwd=self.tmp, env=self.env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        for host, text in INVENTORIES.items():
            inv = self.tmp / f"{host}.yaml"
            inv.write_text(f"lease_dir: {self.tmp}/leases-{host}\n" + text)
            self.inventories[host] = inv
            cfg = vc("fleet", "exporter-config", "--inventory", str(inv))
            assert cfg.returncode == 0, cfg.stderr
            (self.tmp / f"exporter-{host}.yaml").write_text(cfg.stdout)
            self.procs.append(subprocess.Popen(
                [*self.lg["cmd"]("labgrid-exporter"), "-c", self.coordinator, "--name", host,
                 str(self.tmp / f"exporter-{host}.yaml")], env=self.env, stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: self.client("resources").stdout.count("VfioDevice") == 3, 60, "both exporters")
        for host, inv in self.inventories.items():
            made = vc("fleet", "places", "--inventory", str(inv), "--host", host,
                      LG_COORDINATOR=self.coordinator, **self.vc_env)
            assert made.returncode == 0, made.stdout + made.stderr

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def fleet(self, host: str, *args: str, run_args=ONE_TEST, **env) -> subprocess.Popen:
        reports = tempfile.mkdtemp(prefix="vc-fleet-reports-", dir=self.tmp)
        return popen("fleet", "run", "--coordinator", self.coordinator, "--inventory",
                     str(self.inventories[host]), "--host", host, *args, "--", "--reports", reports,
                     *run_args, **{**self.vc_env, **env})

    def holder(self, place: str) -> str:
        line = next(ln for ln in self.client("-p", place, "show").stdout.splitlines()
                    if ln.strip().startswith("acquired:"))
        return line.split(":", 1)[1].strip()

    def clients_left(self) -> list[str]:
        """Command lines of labgrid-client processes talking to this coordinator."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "labgrid-client" in cmd and self.coordinator in cmd:
                out.append(cmd)
        return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("fleet"))
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


def _read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """Output of `proc` up to the first line containing `needle` (fails after `timeout` s)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            if needle in line:
                return seen
    proc.kill()
    pytest.fail(f"no {needle!r} within {timeout}s; output:\n{seen}")


def test_places_describe_the_devices(lab):
    places = [ln.split()[0] for ln in lab.client("places").stdout.splitlines() if ln.strip()]
    assert sorted(places) == ["hostA-a0", "hostB-b0_b1"]
    shown = lab.client("-p", "hostB-b0_b1", "show").stdout
    assert "host=hostb" in shown and "profile=sim_p2p" in shown and "unit=b0_b1" in shown and "driver=sim" in shown
    assert "comment: vfio-conform hostB: profile sim-p2p on b0=sim:sim0 (sim, source), " \
           "b1=sim:sim1 (sim, destination)" in shown
    resources = lab.client("-v", "resources").stdout
    assert "hostB/vfio-b0_b1/VfioDevice" in resources and "'address': 'sim:sim1'" in resources
    assert "'role': 'destination'" in resources and "'profile': 'sim-p2p'" in resources
    again = vc("fleet", "places", "--coordinator", lab.coordinator, "--inventory", str(lab.inventories["hostA"]),
               "--host", "hostA", **lab.vc_env)
    assert again.returncode == 0 and "0 created" in again.stdout, again.stdout + again.stderr


def test_two_hosts_wait_for_a_held_place_into_one_store(lab, pg_server, tmp_path):
    store = pg_server("fleet")
    # another lab user holds hostB's pair: hostB's run waits (saying who holds it), hostA's runs at once
    assert lab.client("-p", "hostB-b0_b1", "acquire").returncode == 0
    runs = {host: lab.fleet(host, "--show-every", "1", run_args=["--store", store, *ONE_TEST],
                            VFIO_CONFORM_LABGRID_TIMEOUT="20")
            for host in ("hostA", "hostB")}
    out_a, _ = runs["hostA"].communicate(timeout=300)
    assert runs["hostA"].returncode == 0, out_a
    assert "hostA: booked hostA-a0" in out_a
    waited = _read_until(runs["hostB"], "acquired by", 60)
    assert "waiting for a place (host=hostb profile=sim_p2p unit=b0_b1)" in waited
    assert "hostB-b0_b1 (acquired by " in waited and "of no limit" in waited
    time.sleep(25)      # longer than one labgrid-client call may take (20 s here): no cap on the wait
    assert runs["hostB"].poll() is None
    assert lab.client("-p", "hostB-b0_b1", "release").returncode == 0
    out_b, _ = runs["hostB"].communicate(timeout=300)
    assert runs["hostB"].returncode == 0, waited + out_b
    assert "hostB: booked hostB-b0_b1" in out_b
    assert lab.holder("hostA-a0") == "None" and lab.holder("hostB-b0_b1") == "None"
    assert "Reservation" not in lab.client("reservations").stdout
    assert not lab.clients_left()

    from vfio_conform.results import open_store
    st = open_store(store, readonly=True)
    try:
        rows = st.runs(limit=10)
    finally:
        st.close()
    assert sorted((r["host"], r["profile"], r["status"]) for r in rows) == [
        ("hostA", "sim-stop-copy", "finished"), ("hostB", "sim-p2p", "finished")]
    # each host publishes its own run: `report latest` alone would be the newest (hostB's) session
    for host, other in (("hostA", "hostB"), ("hostB", "hostA")):
        page = tmp_path / f"{host}.html"
        out = vc("report", "latest", "--host", host, "--store", store, "--out", str(page))
        assert out.returncode == 0, out.stdout + out.stderr
        html = page.read_text()
        assert host in html and other not in html
        gate = vc("diff", "prev", "latest", "--host", host, "--store", store, "--no-html")
        assert gate.returncode == 0 and "baseline: the first run" in gate.stdout, gate.stdout + gate.stderr


def test_wait_limit_and_sigterm_while_waiting(lab):
    assert lab.client("-p", "hostA-a0", "acquire").returncode == 0
    try:
        t0 = time.monotonic()
        limited = lab.fleet("hostA", "--wait", "3")
        out, _ = limited.communicate(timeout=120)
        assert limited.returncode == 3, out
        assert "still held after" in out and "(--wait 3s)" in out and "hostA-a0 (acquired by " in out
        assert time.monotonic() - t0 < 60
        waiting = lab.fleet("hostA")
        _read_until(waiting, "waiting for a place", 60)
        waiting.send_signal(signal.SIGTERM)
        out, _ = waiting.communicate(timeout=60)
        assert waiting.returncode == 3, out
        assert "SIGTERM: stopped while booking" in out
        assert "Reservation" not in lab.client("reservations").stdout     # cancelled
        assert not lab.clients_left()
        assert lab.holder("hostA-a0") != "None"                            # the other user's, untouched
    finally:
        lab.client("-p", "hostA-a0", "release", "--kick")


def _has_results(store: Path) -> bool:
    try:
        return store.exists() and bool(sqlite_rows(store, "SELECT id FROM results"))
    except sqlite3.OperationalError:      # the run is still creating the store
        return False


def test_sigterm_during_the_run(lab, tmp_path):
    """SIGTERM reaches fleet run mid-run: the run ends `terminated`, the place is released, exit 3."""
    store = tmp_path / "r.sqlite"
    proc = lab.fleet("hostA", run_args=["--store", str(store), "-q", "--", "-p", "vc_hang", "-k", "test_arc"],
                     VC_HANG_TEST="sim-stop-copy:RUNNING->STOP]")
    _read_until(proc, "booked hostA-a0", 120)
    _wait_for(lambda: _has_results(store), 120, "the run's first results")
    time.sleep(2)           # inside the hanging test (its sleep is interruptible: a signal ends it)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 3, out
    assert "SIGTERM: the run was stopped" in out
    (run,) = sqlite_rows(store, "SELECT status, reason FROM runs")
    assert (run["status"], run["reason"]) == ("incomplete", "terminated")
    assert lab.holder("hostA-a0") == "None"
    assert "Reservation" not in lab.client("reservations").stdout
    assert not lab.clients_left()


def test_a_labs_own_place_by_name_or_tag(lab, tmp_path):
    """A place the lab made (its own name and tags, matching hostA's devices) books hostA's run:
    by $LG_PLACE, by --tag, and through a reservation the job holds ($LG_TOKEN)."""
    name = "lab_server_7"
    for args in (("create",), ("add-match", "hostA/vfio-a0/VfioDevice"), ("set-tags", "rack=r7", "kind=vfio")):
        assert lab.client("-p", name, *args).returncode == 0
    try:
        store = tmp_path / "r.sqlite"
        by_env = lab.fleet("hostA", run_args=["--store", str(store), *ONE_TEST], LG_PLACE=name)
        out, _ = by_env.communicate(timeout=300)
        assert by_env.returncode == 0 and f"booked {name}" in out, out
        by_tag = lab.fleet("hostA", "--tag", "rack=r7", run_args=["--store", str(store), *ONE_TEST])
        out, _ = by_tag.communicate(timeout=300)
        assert by_tag.returncode == 0 and f"booked {name}" in out, out
        assert lab.holder(name) == "None" and not lab.clients_left()
        # a reservation the job already holds ($LG_TOKEN): used, and left to its owner
        made = lab.client("reserve", "--shell", f"name={name}").stdout
        token = re.search(r"LG_TOKEN=(\S+)", made).group(1)
        by_token = lab.fleet("hostA", run_args=["--store", str(store), *ONE_TEST], LG_TOKEN=token)
        out, _ = by_token.communicate(timeout=300)
        assert by_token.returncode == 0 and f"booked {name}" in out and "(reservation" not in out, out
        assert token in lab.client("reservations").stdout           # not cancelled: it is not ours
        assert lab.client("cancel-reservation", token).returncode == 0
        assert lab.holder(name) == "None" and not lab.clients_left()
        assert [r["host"] for r in sqlite_rows(store, "SELECT host FROM runs")] == ["hostA"] * 3
    finally:
        lab.client("-p", name, "delete")


def test_no_coordinator_is_a_usage_error(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(INVENTORIES["hostA"])
    env = {k: "" for k in ("LG_COORDINATOR",)}
    out = vc("fleet", "run", "--inventory", str(inv), **env)
    assert out.returncode == 2 and "no labgrid coordinator" in out.stderr


def test_a_hung_device_marks_the_host_for_recovery(lab, tmp_path):
    """An operation no signal interrupts (tests/vc_plugins/vc_hang.py, signals masked): the run's
    watchdog says where it hung, fleet run tags the place for recovery, stops the run, releases,
    exits 3; the next fleet run refuses the place until the tag is cleared."""
    from suite_runner import write_profile
    profile = write_profile(tmp_path, "sim-stop-copy", "hangs", timeouts={"test": 1.0, "io": 1.0})
    inv = tmp_path / "inv.yaml"
    inv.write_text(f"lease_dir: {tmp_path}/leases\ndevices:\n  - {{name: a0, sim: sim0, profile: {profile}}}\n")
    store = tmp_path / "r.sqlite"
    try:
        proc = popen("fleet", "run", "--coordinator", lab.coordinator, "--inventory", str(inv), "--host", "hostA",
                     "--place", "hostA-a0", "--", "--store", str(store), "-q", "--", "-p", "vc_hang", "-k",
                     "test_arc and RUNNING", VC_HANG_TEST="hangs:RUNNING->STOP]", VC_HANG_UNINTERRUPTIBLE="1",
                     VFIO_CONFORM_FLEET_STOP_GRACE="5", **lab.vc_env)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 3, out
        assert re.search(r"host marked for recovery: hung in SET MIG_DEVICE_STATE STOP on sim0 since \S+Z", out), out
        shown = lab.client("-p", "hostA-a0", "show").stdout
        assert "needs_recovery=" in shown and "comment: NEEDS RECOVERY: hung in SET MIG_DEVICE_STATE STOP" in shown
        assert lab.holder("hostA-a0") == "None" and not lab.clients_left()
        assert any("hung in" in (r["message"] or "") for r in sqlite_rows(store, "SELECT message FROM results"))
        again = lab.fleet("hostA", "--place", "hostA-a0")
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 3 and "is marked for recovery" in out, out
        assert lab.holder("hostA-a0") == "None"
    finally:
        lab.client("-p", "hostA-a0", "set-tags", "needs_recovery=")
        vc("fleet", "places", "--coordinator", lab.coordinator, "--inventory", str(lab.inventories["hostA"]),
           "--host", "hostA", **lab.vc_env)
