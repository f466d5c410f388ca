"""Host inventory: the file's schema and bad input, the host check, leases across processes,
bind and restore on a fake sysfs driven by a fake kernel, health checks, and runs from an inventory."""
from __future__ import annotations

import errno
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from run_cli import env, popen, vc
from test_kernel_backend import FakeHost
from vfio_conform.backends.kernel.bind import BindError, bind, current_driver, restore
from vfio_conform.base.errors import ConfigError
from vfio_conform.results.outcomes import OutcomeSkip
from vfio_conform.plugin.inventory import (IN_USE, LEASED, MISSING, READY, WILL_BIND, WRONG_DRIVER,
                                           InventorySession, bind_record_path, check_host, sweep)
from vfio_conform.hosts.leases import LeaseBusy, holder_of, lease_one, try_lease
from vfio_conform.hosts.inventory import load_inventory

BDF, OTHER = "0000:00:04.0", "0000:00:05.0"
UUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"


def write(tmp_path: Path, text: str, name: str = "inv.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def sim_profile(tmp_path: Path, devices=("sim0", "sim1", "sim2", "sim3"), per_device: str = "") -> Path:
    """A sim profile with four instances (two pairs); `per_device` adds sim keys per instance."""
    base = (Path(__file__).resolve().parents[1] / "profiles" / "sim-p2p.yaml").read_text()
    text = base.replace("name: sim-p2p", "name: inv-sim").replace(
        "devices: [sim0, sim1]", f"devices: [{', '.join(devices)}]")
    if per_device:
        text = text.replace("    precopy_bytes: 2048\n", "    precopy_bytes: 2048\n" + per_device)
    path = tmp_path / "inv-sim.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- schema

def test_inventory_is_typed_records(tmp_path):
    inv = load_inventory(write(tmp_path, f"""
        lease_dir: {tmp_path}/leases
        devices:
          - {{name: edu, pci: "00:04.0", profile: qemu-edu, allow: {{bind: true, reset: false, write_regions: false}}}}
          - {{name: m0, mdev: {{uuid: {UUID.upper()}, parent: mtty, type: mtty-2}}, profile: mtty, peer: m1}}
          - {{name: m1, mdev: 83b8f4f2-509f-382f-3c1e-e6bfe0fa1002, profile: mtty}}
          - {{name: s, sim: sim0, profile: sim-stop-copy}}
        """))
    edu, m0, m1, s = inv.devices
    assert (edu.kind, edu.device_id, edu.driver, edu.allow.bind, edu.allow.reset) == \
        ("pci", BDF, "vfio-pci", True, False)
    assert (m0.kind, m0.device_id, m0.mdev.parent, m0.mdev.type, m0.driver) == ("mdev", UUID, "mtty", "mtty-2", None)
    assert m1.mdev.uuid.endswith("1002") and s.device_id == "sim0"
    assert [u.label for u in inv.units()] == ["edu", "m0+m1", "s"]
    assert [u.device_ids for u in inv.units("mtty")] == [(UUID, m1.device_id)]
    assert inv.profile_names() == ["qemu-edu", "mtty", "sim-stop-copy"]
    assert edu.lease_key == f"pci-{BDF}" and s.lease_key == "sim-sim-stop-copy-sim0"


BAD = [
    ("devices:\n  - {name: a, sim: sim0, profile: sim-p2p, colour: red}\n", 2, "devices.0.colour: unknown key"),
    ("devices:\n  - {name: a, sim: sim0, pci: '00:01.0', profile: sim-p2p}\n", 2,
     "devices.0: device 'a' needs exactly one address"),
    ("devices:\n  - {name: a, pci: '00:1.0', profile: qemu-edu}\n", 2, "devices.0.pci: '00:1.0' is not a PCI address"),
    ("devices:\n  - {name: a, sim: sim0, profile: sim-p2p, peer: zz}\n", 2, "devices.0.peer: no device named 'zz'"),
    ("devices:\n  - {name: a, sim: sim0, profile: sim-p2p, peer: b}\n  - {name: b, sim: sim0, profile: sim-stop-copy}\n",
     2, "devices.0.peer: peer 'b' runs profile 'sim-stop-copy'"),
    ("devices:\n  - {name: a, sim: sim0, profile: sim-p2p}\n  - {name: a, sim: sim1, profile: sim-p2p}\n", 3,
     "devices.1.name: device name 'a' is used twice"),
    ("devices:\n  - {name: a, pci: '00:04.0', profile: qemu-edu}\n  - {name: b, pci: '0000:00:04.0', profile: qemu-edu}\n",
     3, "devices.1.pci: 0000:00:04.0 is listed twice"),
    ("devices:\n  - {name: b, pci: 0000:00:04.0, profile: qemu-edu}\n",
     2, "devices.0.pci: YAML read this PCI address as the number 4.0 (quote it"),
    ("devices:\n  - &x {name: a, sim: sim0, profile: sim-p2p}\n  - *x\n", 3, "devices.1: YAML alias *x is not allowed"),
    ("devices:\n  - {name: a, mdev: " + UUID + ", profile: mtty, allow: {reset: false}}\n", 2,
     "devices.0.allow.reset: profile 'mtty' declares features.reset: true"),
    ("devices:\n  - {name: a, sim: sim0, profile: sim-p2p, allow: {write_regions: false}}\n", 2,
     "devices.0.allow.write_regions: profile 'sim-p2p' writes region(s) BAR0, BAR2"),
    ("devices:\n  - {name: a, sim: sim9, profile: sim-p2p}\n", 2, "devices.0.sim: sim device 'sim9' is not defined"),
    ("devices:\n  - {name: a, sim: sim0, profile: mtty}\n", 2, "devices.0.profile: profile 'mtty' uses backend 'kernel'"),
    ("devices:\n  - {name: a, mdev: " + UUID + ", profile: mtty, driver: vfio-pci}\n", 2,
     "devices.0.driver: only a PCI device is bound"),
    ("devices:\n  - {name: a, sim: sim0, profile: no-such}\n", 2, "devices.0.profile: no profile named 'no-such'"),
    ("devices: []\n", 1, "devices: is required"),
    ("lease_wait: -1\ndevices:\n  - {name: a, sim: sim0, profile: sim-p2p}\n", 1, "lease_wait: -1 is out of range"),
]


@pytest.mark.parametrize("text,line,message", BAD, ids=[m.split(":")[0] + ":" + m.split(": ")[1][:20] for _, _, m in BAD])
def test_bad_inventory_names_file_line_field(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_inventory(path)
    assert str(err.value).startswith(f"{path}:{line}: {message}"), str(err.value)


@pytest.mark.parametrize("command", ["run", "devices"])
def test_cli_bad_inventory_is_one_line_exit_2(tmp_path, command):
    path = write(tmp_path, "devices:\n  - {name: a, sim: sim0, profile: sim-p2p, colour: red}\n")
    out = vc(command, "--inventory", str(path))
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [f"vfio-conform: error: {path}:2: devices.0.colour: unknown key "
                                               "'colour' (expected one of: allow, driver, mdev, name, pci, peer, "
                                               "profile, sim, socket)"]
    assert "Traceback" not in out.stdout + out.stderr


def test_device_with_inventory_is_refused(tmp_path):
    path = write(tmp_path, "devices:\n  - {name: a, sim: sim0, profile: sim-p2p}\n")
    out = vc("run", "--inventory", str(path), "--device", "sim0", "--no-store")
    assert out.returncode == 2 and "--device and --inventory exclude each other" in out.stderr


# --------------------------------------------------------------------------- bind and restore

class FakeKernel:
    """Acts on sysfs writes as the PCI core does: driver_override, unbind, drivers_probe, bind."""

    def __init__(self, host: FakeHost, native: dict[str, str | None], refuse: set[str] = frozenset()):
        self.host, self.native, self.refuse = host, native, set(refuse)
        self.writes: list[tuple[str, str]] = []

    def _dev(self, bdf: str) -> Path:
        return self.host.sys / "bus" / "pci" / "devices" / bdf

    def _link(self, bdf: str, driver: str) -> None:
        if driver in self.refuse:
            return
        drv = self.host.sys / "bus" / "pci" / "drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        (self._dev(bdf) / "driver").symlink_to(drv)

    def write(self, path: Path, text: str) -> None:
        self.writes.append((str(path.relative_to(self.host.sys)), text))
        name, value = path.name, text.strip()
        if name == "driver_override":
            path.write_text((value or "(null)") + "\n")
        elif name == "unbind":
            assert path.parent.resolve().name == current_driver(value, self.host.sys), "unbind: wrong driver"
            (self._dev(value) / "driver").unlink()
        elif name == "drivers_probe":
            if (self._dev(value) / "driver").exists():
                return
            override = (self._dev(value) / "driver_override").read_text().strip()
            driver = override if override != "(null)" else self.native.get(value)
            if driver:
                self._link(value, driver)
        elif name == "bind":
            self._link(value, path.parent.name)


@pytest.fixture
def host(tmp_path) -> FakeHost:
    h = FakeHost(tmp_path)
    for bdf, drv in ((BDF, "e1000e"), (OTHER, "e1000e")):
        h.pci(bdf, drv, group=None)
        (h.sys / "bus" / "pci" / "devices" / bdf / "driver_override").write_text("(null)\n")
    return h


def test_bind_and_restore_round_trip(host):
    kernel = FakeKernel(host, {BDF: "e1000e", OTHER: "e1000e"})
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    assert current_driver(BDF, host.sys) == "vfio-pci"
    assert (record.original_driver, record.original_override) == ("e1000e", "")
    restore(record, host.sys, kernel.write)
    assert current_driver(BDF, host.sys) == "e1000e"
    assert (host.sys / "bus/pci/devices" / BDF / "driver_override").read_text().strip() == "(null)"
    assert current_driver(OTHER, host.sys) == "e1000e"
    touched = {text.strip() for _, text in kernel.writes if text.strip() not in ("vfio-pci", "")}
    assert touched == {BDF}, kernel.writes                 # only the named function was written to


def test_bind_from_no_driver_restores_to_no_driver(host):
    (host.sys / "bus/pci/devices" / BDF / "driver").unlink()
    kernel = FakeKernel(host, {})
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    assert current_driver(BDF, host.sys) == "vfio-pci" and record.original_driver is None
    restore(record, host.sys, kernel.write)
    assert current_driver(BDF, host.sys) is None


def test_restore_binds_explicitly_when_probe_picks_another_driver(host):
    kernel = FakeKernel(host, {BDF: "e1000e"})
    record = bind(BDF, "vfio-pci", host.sys, kernel.write)
    kernel.native[BDF] = "igb"                    # probing now prefers another driver
    restore(record, host.sys, kernel.write)
    assert current_driver(BDF, host.sys) == "e1000e"
    assert ("bus/pci/drivers/e1000e/bind", BDF) in kernel.writes


def test_failed_bind_is_undone_and_reported(host):
    kernel = FakeKernel(host, {BDF: "e1000e"}, refuse={"vfio-pci"})      # vfio-pci not loaded
    with pytest.raises(BindError, match=f"{BDF} is bound to no driver, not to vfio-pci"):
        bind(BDF, "vfio-pci", host.sys, kernel.write, settle=0.1)
    assert current_driver(BDF, host.sys) == "e1000e"


def _pci_inventory(tmp_path, allow_bind: bool):
    return load_inventory(write(tmp_path, f"""
        lease_dir: {tmp_path}/leases
        devices:
          - {{name: edu, pci: "{BDF}", profile: qemu-edu, allow: {{bind: {str(allow_bind).lower()}}}}}
        """))


def test_session_binds_only_when_allowed_and_restores(host, tmp_path, monkeypatch):
    monkeypatch.setattr("vfio_conform.plugin.inventory.health_check", lambda *a, **k: None)
    kernel = FakeKernel(host, {BDF: "e1000e"})
    refused = InventorySession(_pci_inventory(tmp_path, False), "t", host.sys, host.dev, kernel.write)
    profile = refused.inventory.profiles["qemu-edu"]
    with pytest.raises(OutcomeSkip, match=r"bound to e1000e, not vfio-pci, .*\(allow.bind: false\)"):
        refused.device_ids(profile)
    refused.release()
    assert kernel.writes == []                              # nothing touched without permission

    sess = InventorySession(_pci_inventory(tmp_path, True), "t", host.sys, host.dev, kernel.write)
    assert sess.device_ids(profile) == (BDF,)
    assert current_driver(BDF, host.sys) == "vfio-pci"
    assert bind_record_path(sess.directory, sess.inventory.devices[0]).exists()
    sess.release()
    assert current_driver(BDF, host.sys) == "e1000e"
    assert not bind_record_path(sess.directory, sess.inventory.devices[0]).exists()


def test_killed_run_is_restored_by_the_sweep(host, tmp_path, monkeypatch):
    """A worker dies (SIGKILL: no finally runs) with the device bound; the next holder restores it."""
    monkeypatch.setattr("vfio_conform.plugin.inventory.health_check", lambda *a, **k: None)
    kernel = FakeKernel(host, {BDF: "e1000e"})
    inv = _pci_inventory(tmp_path, True)
    dead = InventorySession(inv, "dead", host.sys, host.dev, kernel.write)
    dead.device_ids(inv.profiles["qemu-edu"])
    for _, lease in dead.held.values():      # as the kernel does when the process dies
        lease.release()
    dead.binds.clear()
    assert current_driver(BDF, host.sys) == "vfio-pci"
    holder = _hold_lease(sess_dir := dead.directory, "pci-" + BDF)   # a live holder's record is left alone
    try:
        assert sweep(inv, host.sys, kernel.write) == []
        assert current_driver(BDF, host.sys) == "vfio-pci"
    finally:
        holder.kill()
        holder.wait()
    assert sweep(inv, host.sys, kernel.write) == []
    assert current_driver(BDF, host.sys) == "e1000e"
    assert not bind_record_path(sess_dir, inv.devices[0]).exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_during_run_restores_driver(host, tmp_path, signum):
    """A process holding a bound device is sent SIGTERM or SIGINT: it unwinds and restores the driver."""
    script = tmp_path / "hold.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_inventory import FakeKernel, _pci_inventory
        from test_kernel_backend import FakeHost
        from pathlib import Path
        import vfio_conform.plugin.inventory as m
        m.health_check = lambda *a, **k: None
        host = FakeHost.__new__(FakeHost); host.sys = Path({str(host.sys)!r}); host.dev = Path({str(host.dev)!r})
        kernel = FakeKernel(host, {{{BDF!r}: "e1000e"}})
        inv = _pci_inventory(Path({str(tmp_path)!r}), True)
        sess = m.InventorySession(inv, "t", host.sys, host.dev, kernel.write)
        try:
            sess.device_ids(inv.profiles["qemu-edu"])
            print("bound", flush=True)
            time.sleep(60)
        finally:
            sess.release()
            print("restored", flush=True)
        """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())
    assert proc.stdout.readline().strip() == "bound"
    assert current_driver(BDF, host.sys) == "vfio-pci"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert "restored" in out, err
    assert current_driver(BDF, host.sys) == "e1000e"


# --------------------------------------------------------------------------- leases

def _hold_lease(directory: Path, key: str) -> subprocess.Popen:
    code = (f"from pathlib import Path; from vfio_conform.hosts.leases import try_lease; import time\n"
            f"l = try_lease(Path({str(directory)!r}), ({key!r},), 'pid holder-proc'); print(l is not None, flush=True)\n"
            f"time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env())
    assert proc.stdout.readline().strip() == "True"
    return proc


def test_lease_is_exclusive_across_processes_and_freed_when_holder_dies(tmp_path):
    holder = _hold_lease(tmp_path, "dev-a")
    try:
        assert try_lease(tmp_path, ("dev-a",), "me") is None
        assert holder_of(tmp_path, "dev-a") == "pid holder-proc"
        index, lease = lease_one(tmp_path, [("dev-a",), ("dev-b",)], "me")
        assert index == 1                                     # the free one
        with pytest.raises(LeaseBusy, match="dev-a .pid holder-proc.*dev-b"):
            lease_one(tmp_path, [("dev-a",), ("dev-b",)], "other", wait=0.2)
        lease.release()
    finally:
        holder.kill()                                        # SIGKILL: no cleanup code runs
        holder.wait()
    assert holder_of(tmp_path, "dev-a") is None
    assert try_lease(tmp_path, ("dev-a",), "me") is not None


def test_pair_is_taken_whole_or_not_at_all(tmp_path):
    holder = _hold_lease(tmp_path, "dst")
    try:
        assert try_lease(tmp_path, ("src", "dst"), "me") is None
        assert holder_of(tmp_path, "src") is None           # the free half was not kept
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------- host check

def test_host_check_states(host, tmp_path):
    host.pci("0000:00:06.0", "vfio-pci", group=9)
    host.pci("0000:00:07.0", "vfio-pci", group=10)
    host.mdev(UUID, group=11)
    proc = tmp_path / "proc" / "4242"
    (proc / "fd").mkdir(parents=True)
    (proc / "comm").write_text("qemu-system-x86\n")
    (proc / "fd" / "5").symlink_to(host.dev / "vfio" / "10")
    inv = load_inventory(write(tmp_path, f"""
        lease_dir: {tmp_path}/leases
        devices:
          - {{name: wrong, pci: "{BDF}", profile: qemu-edu}}
          - {{name: bindable, pci: "{OTHER}", profile: qemu-edu, allow: {{bind: true}}}}
          - {{name: ready, pci: "0000:00:06.0", profile: qemu-edu}}
          - {{name: busy, pci: "0000:00:07.0", profile: qemu-edu}}
          - {{name: gone, pci: "0000:00:08.0", profile: qemu-edu}}
          - {{name: m, mdev: {{uuid: {UUID}, type: mtty-1}}, profile: mtty}}
          - {{name: leased, sim: sim0, profile: sim-p2p}}
        """))
    holder = _hold_lease(tmp_path / "leases", "sim-sim-p2p-sim0")
    try:
        states = {s.device.name: (s.state, s.detail) for s in check_host(inv, host.sys, host.dev, tmp_path / "proc")}
    finally:
        holder.kill()
        holder.wait()
    assert states["wrong"] == (WRONG_DRIVER, "bound to e1000e, not vfio-pci (allow.bind: false)")
    assert states["bindable"][0] == WILL_BIND
    assert states["ready"] == (READY, "driver vfio-pci")
    assert states["busy"][0] == IN_USE and "pid 4242 (qemu-system-x86)" in states["busy"][1]
    assert states["gone"][0] == MISSING and "0000:00:08.0" in states["gone"][1]
    assert states["m"] == (MISSING, f"mdev {UUID} is of type mtty-2, not mtty-1")
    assert states["leased"] == (LEASED, "leased by pid holder-proc")


# --------------------------------------------------------------------------- runs from an inventory

def _sim_inventory(tmp_path, profile: Path, pairs: int = 2, extra: str = "") -> Path:
    lines = [f"lease_dir: {tmp_path}/leases", "devices:"]
    for p in range(pairs):
        lines.append(f"  - {{name: s{2 * p}, sim: sim{2 * p}, profile: {profile.name}, peer: s{2 * p + 1}}}")
        lines.append(f"  - {{name: s{2 * p + 1}, sim: sim{2 * p + 1}, profile: {profile.name}}}")
    return write(tmp_path, "\n".join(lines) + "\n" + extra)


def test_n_auto_runs_one_worker_per_pair_each_on_its_own_lease(tmp_path):
    inv = _sim_inventory(tmp_path, sim_profile(tmp_path))
    out = vc("run", "--inventory", str(inv), "-n", "auto", "--no-store", "--", "-k", "test_arc", "-v", "-v")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    assert "created: 2/2 workers" in out.stdout           # two pairs: two workers
    assert "[gw0] [" in out.stdout and "[gw1] [" in out.stdout                # both ran tests
    assert "@inv-sim#0" in out.stdout and "@inv-sim#1" in out.stdout          # one group per pair
    row = next(line for line in out.stdout.splitlines() if line.startswith("inv-sim "))
    assert row.split()[-4:-2] == ["CONFORMANT", "(subset"] and row.split()[-1] == "-", row   # a -k run;
    # neither worker found its pair taken
    assert "inv-sim: run #- finished" in out.stdout


def test_a_leased_device_is_never_shared_with_another_run(tmp_path):
    inv = _sim_inventory(tmp_path, sim_profile(tmp_path), pairs=1)
    holder = _hold_lease(tmp_path / "leases", "sim-inv-sim-sim1")     # another run holds the destination
    try:
        out = vc("run", "--inventory", str(inv), "--no-store", "--", "-k", "test_arc and STOP", "-rs")
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 3, out.stdout[-3000:]
    assert "infra-error" in out.stdout and "pid holder-proc" in out.stdout and " passed" not in out.stdout
    again = vc("run", "--inventory", str(inv), "--no-store", "--", "-k", "test_arc and STOP")
    assert again.returncode == 0, again.stdout[-3000:]


def test_failed_health_check_is_infra_error_and_others_carry_on(tmp_path):
    profile = sim_profile(tmp_path, per_device="    per_device:\n      sim0: {faults: [reset_flag_without_reset]}\n")
    inv = _sim_inventory(tmp_path, profile, pairs=1, extra="  - {name: c, sim: sim0, profile: sim-stop-copy}\n")
    out = vc("run", "--inventory", str(inv), "--no-store", "--", "-k", "test_arc and RUNNING", "-rs")
    assert out.returncode == 3, out.stdout[-3000:]
    assert "health check: sim0: VFIO_DEVICE_RESET failed with EINVAL" in out.stdout
    assert "sim-stop-copy: run #- finished" in out.stdout
    assert "inv-sim: run #- finished; infra-error=" in out.stdout and "inv-sim: run #- finished; fail" not in out.stdout


def test_xdist_auto_hook_counts_units(tmp_path):
    from vfio_conform.plugin.inventory import pytest_xdist_auto_num_workers
    inv = _sim_inventory(tmp_path, sim_profile(tmp_path), pairs=2,
                         extra="  - {name: c, sim: sim0, profile: sim-stop-copy}\n")

    class Config:
        def getoption(self, name, default=None):
            return {"vc_inventory": str(inv), "vc_profile": []}.get(name, default)
    assert pytest_xdist_auto_num_workers(Config()) == 3


def test_device_whose_entry_forbids_reset_is_never_reset(tmp_path):
    from vfio_conform.backends.registry import open_device
    profile = sim_profile(tmp_path, devices=("sim0", "sim1"))
    profile.write_text(profile.read_text().replace("  reset: true", "  reset: false"))
    inv = load_inventory(write(tmp_path, f"""
        lease_dir: {tmp_path}/leases
        devices:
          - {{name: s0, sim: sim0, profile: {profile}, peer: s1, allow: {{reset: false}}}}
          - {{name: s1, sim: sim1, profile: {profile}}}
        """))
    sess = InventorySession(inv, "t")
    prof = inv.profiles["inv-sim"]
    try:
        assert sess.device_ids(prof) == ("sim0", "sim1")
        src, dst = open_device(prof, "sim0", "source"), open_device(prof, "sim1", "destination")
        sess.pytest_vc_device_opened(device=src, profile=prof, role="source")
        sess.pytest_vc_device_opened(device=dst, profile=prof, role="destination")
        assert src.try_reset() == errno.EPERM           # refused before it reaches the device
        assert dst.try_reset() == 0                     # its peer allows reset
        assert src.to_safe_state() == "running"         # the pool's way back without reset
    finally:
        sess.release()


def test_two_concurrent_runs_take_the_device_one_after_the_other(tmp_path):
    """Two runs started together on a one-pair inventory: the second waits for the first's lease."""
    inv = _sim_inventory(tmp_path, sim_profile(tmp_path), pairs=1)
    inv.write_text(inv.read_text().replace("devices:", "lease_wait: 300\ndevices:", 1))
    leases = tmp_path / "leases"
    runs = [popen("run", "--inventory", str(inv), "--no-store", "--", "-k", "test_arc and STOP") for _ in range(2)]
    holders = []
    while any(r.poll() is None for r in runs):
        for key in ("sim-inv-sim-sim0", "sim-inv-sim-sim1"):
            who = holder_of(leases, key) if leases.is_dir() else None
            if who and who.startswith("pid ") and (not holders or holders[-1] != (key, who)):
                holders.append((key, who))
        time.sleep(0.01)
    outs = [r.communicate()[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outs
    pids = []
    for _, who in holders:
        pid = int(who.split()[1])
        if not pids or pids[-1] != pid:
            pids.append(pid)
    assert sorted(pids) == sorted(r.pid for r in runs), holders   # one, then the other: never back
