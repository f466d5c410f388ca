"""Stage 2 of a lab boot, run inside the guest chroot: set up devices, run the command.

Standalone (stdlib only, not imported through the package in the guest): it reads the
spec the host wrote to the results share and writes manifest.json, dmesg.txt and
guest.json back to it; the command's output, the tests started and the results journal
go through virtio-serial ports (qemu_lab/channels.py). Markers on the console tell the host
how far the guest got.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

MARK = "VFIO-LAB:"


def say(text: str) -> None:
    """Print a progress marker to the serial console."""
    print(f"{MARK} {text}", flush=True)


def sh(*argv: str) -> str:
    """Run a setup command; raise RuntimeError with its stderr if it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _group_of(sysdev: Path) -> tuple[str, str]:
    """Return (iommu group number, /dev/vfio/N) of a sysfs device."""
    group = os.path.basename(os.readlink(sysdev / "iommu_group"))
    node = f"/dev/vfio/{group}"
    for _ in range(50):
        if os.path.exists(node):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"{node} did not appear for {sysdev}")
    return group, node


def _group_name(sysdev: Path) -> str | None:
    """The iommu group's sysfs name: "vfio-noiommu" also for mdev (emulated IOMMU) groups."""
    path = sysdev / "iommu_group" / "name"
    return path.read_text().strip() if path.exists() else None


def _srcversion(module: str) -> str | None:
    path = Path("/sys/module") / module / "srcversion"
    return path.read_text().strip() if path.exists() else None


def setup_mdev(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Load the mtty variants and create the requested mdev instances."""
    devices = []
    for mod in spec["modules"]:
        sh("insmod", mod["ko"])
        types = Path("/sys/class/mdev_bus") / mod["name"] / "mdev_supported_types" / mod["type"]
        if not types.is_dir():
            raise RuntimeError(f"mdev type {types} missing after insmod {mod['ko']}")
        for uuid in mod["uuids"]:
            (types / "create").write_text(uuid + "\n")
            sysdev = Path("/sys/bus/mdev/devices") / uuid
            group, node = _group_of(sysdev)
            devices.append({"id": uuid, "uuid": uuid, "parent": mod["name"], "type": mod["type"],
                            "module": mod["name"], "srcversion": _srcversion(mod["name"]),
                            "variant_flags": mod.get("flags"), "variant_bug": mod.get("bug") or None,
                            "iommu_group": int(group), "iommu_group_name": _group_name(sysdev),
                            "vfio_dev": node})
    return devices


def _read_hex(path: Path) -> str:
    return path.read_text().strip()


def setup_pci(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Bind the planned emulated PCI devices to vfio-pci via driver_override."""
    devices = []
    for dev in spec["pci"]:
        sysdev = Path("/sys/bus/pci/devices") / dev["bdf"]
        if not sysdev.exists():
            raise RuntimeError(f"PCI device {dev['bdf']} ({dev['role']}) not present in the guest")
        (sysdev / "driver_override").write_text("vfio-pci\n")
        if (sysdev / "driver").exists():
            (sysdev / "driver" / "unbind").write_text(dev["bdf"] + "\n")
        Path("/sys/bus/pci/drivers_probe").write_text(dev["bdf"] + "\n")
        driver = os.path.basename(os.readlink(sysdev / "driver")) if (sysdev / "driver").exists() else None
        if driver != "vfio-pci":
            raise RuntimeError(f"{dev['bdf']} bound to {driver!r}, not vfio-pci")
        group, node = _group_of(sysdev)
        bars = []
        for line in (sysdev / "resource").read_text().splitlines()[:6]:
            start, end, _flags = (int(x, 16) for x in line.split())
            bars.append(end - start + 1 if end else 0)
        devices.append({"id": dev["bdf"], "bdf": dev["bdf"], "role": dev["role"], "kind": dev["kind"],
                        "vendor": _read_hex(sysdev / "vendor"), "device": _read_hex(sysdev / "device"),
                        "class": _read_hex(sysdev / "class"), "driver": driver,
                        "bar_sizes": bars, "iommu_group": int(group),
                        "iommu_group_name": _group_name(sysdev), "vfio_dev": node})
    return devices


def _port(name: str) -> str | None:
    """/dev node of the virtio-serial port called `name`, or None."""
    base = Path("/sys/class/virtio-ports")
    for entry in sorted(base.iterdir()) if base.is_dir() else ():
        try:
            if (entry / "name").read_text().strip() == name and Path("/dev", entry.name).exists():
                return f"/dev/{entry.name}"
        except OSError:
            continue
    return None


def open_channels(spec: dict[str, Any]) -> dict[str, int]:
    """An fd per output channel: its virtio-serial port (QEMU writes the host file at once), or,
    without the port, the channel's file on the results share."""
    fds = {}
    for channel in spec.get("channels", []):
        port = _port(channel["port"])
        fds[channel["key"]] = os.open(port, os.O_WRONLY) if port else \
            os.open(channel["fallback"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return fds


class Relay(threading.Thread):
    """Copies what processes write to a FIFO into one channel fd (a port may be open only once)."""

    def __init__(self, fifo: str, out: int) -> None:
        super().__init__(name=f"relay {fifo}", daemon=True)
        os.makedirs(os.path.dirname(fifo), exist_ok=True)
        if not os.path.exists(fifo):
            os.mkfifo(fifo, 0o666)
        self.fd = os.open(fifo, os.O_RDWR)      # read end that never sees EOF; writers never block
        self.out = out

    def run(self) -> None:
        while True:
            data = os.read(self.fd, 1 << 16)
            while data:
                data = data[os.write(self.out, data):]

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until what was written to the FIFO has been relayed."""
        buf = bytearray(4)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fcntl.ioctl(self.fd, termios.FIONREAD, buf)
            if int.from_bytes(buf, sys.byteorder) == 0:
                time.sleep(0.05)            # the last read's write to the port
                return
            time.sleep(0.01)


def start_relays(spec: dict[str, Any], fds: dict[str, int]) -> list[Relay]:
    relays = []
    for channel in spec.get("channels", []):
        if channel["relayed"]:
            relay = Relay(channel["fifo"], fds[channel["key"]])
            relay.start()
            relays.append(relay)
    return relays


def run_command(spec: dict[str, Any], results: Path, fds: dict[str, int]) -> int:
    """Run the user's argv with stdout/stderr on their channels (or files on the results share)."""
    env = dict(spec["env"])
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    out = fds["stdout"] if "stdout" in fds else os.open(results / "stdout.txt", flags)
    err = fds["stderr"] if "stderr" in fds else os.open(results / "stderr.txt", flags)
    say("command start")
    proc = subprocess.run(spec["argv"], cwd=spec["cwd"], env=env, stdout=out, stderr=err,
                          stdin=subprocess.DEVNULL)
    say(f"command exit {proc.returncode}")
    return proc.returncode


def main(spec_path: str) -> int:
    """Set up devices, write the manifest, run the command, save dmesg."""
    t0 = time.monotonic()
    spec = json.loads(Path(spec_path).read_text())
    results = Path(spec_path).parent
    os.environ["PATH"] = spec["env"]["PATH"]
    status: dict[str, Any] = {"setup_error": None, "exit_code": None}
    relays: list[Relay] = []
    fds: dict[str, int] = {}
    try:
        fds = open_channels(spec)
        relays = start_relays(spec, fds)
        for module in spec["base_modules"]:
            sh("modprobe", module)
        devices = setup_mdev(spec) if spec["mode"] == "mdev" else setup_pci(spec)
        manifest = {"mode": spec["mode"], "kernel": os.uname().release,
                    "modules": {m: _srcversion(m) for m in
                                spec["base_modules"] + [m["name"] for m in spec.get("modules", [])]},
                    "devices": devices}
        (results / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        status["setup_seconds"] = round(time.monotonic() - t0, 3)
        say(f"devices ready {' '.join(d['id'] for d in devices)}")
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        status["setup_error"] = f"{type(exc).__name__}: {exc}"
        say(f"FATAL setup: {status['setup_error']}")
    if status["setup_error"] is None:
        t1 = time.monotonic()
        try:
            status["exit_code"] = run_command(spec, results, fds)
        except OSError as exc:
            status["setup_error"] = f"cannot start command {spec['argv']!r}: {exc}"
            say(f"FATAL setup: {status['setup_error']}")
        status["command_seconds"] = round(time.monotonic() - t1, 3)
    for relay in relays:
        relay.drain()
    dmesg = subprocess.run(["dmesg"], capture_output=True)
    (results / "dmesg.txt").write_bytes(dmesg.stdout)
    (results / "guest.json").write_text(json.dumps(status, indent=2) + "\n")
    os.sync()
    return 0 if status["setup_error"] is None else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
