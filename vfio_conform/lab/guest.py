"""Stage 2 of a lab boot, run inside the guest chroot: set up devices, run the command.

Standalone (stdlib only, not imported through the package in the guest): it reads the
spec the host wrote to the results share and writes manifest.json, stdout.txt,
stderr.txt, dmesg.txt and guest.json back to it. Markers on the console tell the host
how far the guest got.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
        for i, line in enumerate((sysdev / "resource").read_text().splitlines()[:6]):
            start, end, _flags = (int(x, 16) for x in line.split())
            bars.append(end - start + 1 if end else 0)
        devices.append({"id": dev["bdf"], "bdf": dev["bdf"], "role": dev["role"], "kind": dev["kind"],
                        "vendor": _read_hex(sysdev / "vendor"), "device": _read_hex(sysdev / "device"),
                        "class": _read_hex(sysdev / "class"), "driver": driver,
                        "bar_sizes": bars, "iommu_group": int(group),
                        "iommu_group_name": _group_name(sysdev), "vfio_dev": node})
    return devices


def run_command(spec: dict[str, Any], results: Path) -> int:
    """Run the user's argv with stdout/stderr captured to the results share."""
    env = dict(spec["env"])
    with open(results / "stdout.txt", "wb") as out, open(results / "stderr.txt", "wb") as err:
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
    try:
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
            status["exit_code"] = run_command(spec, results)
        except OSError as exc:
            status["setup_error"] = f"cannot start command {spec['argv']!r}: {exc}"
            say(f"FATAL setup: {status['setup_error']}")
        status["command_seconds"] = round(time.monotonic() - t1, 3)
    dmesg = subprocess.run(["dmesg"], capture_output=True)
    (results / "dmesg.txt").write_bytes(dmesg.stdout)
    (results / "guest.json").write_text(json.dumps(status, indent=2) + "\n")
    os.sync()
    return 0 if status["setup_error"] is None else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
