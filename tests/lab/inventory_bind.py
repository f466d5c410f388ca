"""Runs in the vfio-pci lab guest: an inventory run binds edu to vfio-pci and restores its driver.

The guest boots with edu already on vfio-pci; this script first gives it back (no driver, no
override: how it looks on a host where nothing claimed it), then
1. `vfio-conform run --inventory` binds it, runs a region subset, and restores it;
2. the same run is sent SIGTERM while a test runs: the driver is restored all the same.
Prints one JSON object for the host-side test.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PCI = Path("/sys/bus/pci/devices")
WORK = Path("/tmp/vc-inventory")


def find_edu() -> str:
    for dev in sorted(PCI.iterdir()):
        if (dev / "vendor").read_text().strip() == "0x1234" and (dev / "device").read_text().strip() == "0x11e8":
            return dev.name
    raise SystemExit("no edu device in the guest")


def state(bdf: str) -> dict:
    dev = PCI / bdf
    driver = os.path.basename(os.readlink(dev / "driver")) if (dev / "driver").exists() else None
    return {"driver": driver, "override": (dev / "driver_override").read_text().strip()}


def release(bdf: str) -> None:
    dev = PCI / bdf
    (dev / "driver_override").write_text("\n")
    if (dev / "driver").exists():
        (dev / "driver" / "unbind").write_text(bdf)


def _tests_started(progress: Path) -> bool:
    """A test began: its node id line (the `# selected PROFILE<TAB>NODEID` lines listing the
    selection come first, before any test runs)."""
    if not progress.exists():
        return False
    return any(line and not line.startswith("#") for line in progress.read_text().splitlines())


def main() -> int:
    bdf = find_edu()
    release(bdf)
    WORK.mkdir(parents=True, exist_ok=True)
    inventory = WORK / "inventory.yaml"
    inventory.write_text(f"lease_dir: {WORK}/leases\ndevices:\n"
                         f"  - {{name: edu0, pci: \"{bdf}\", profile: qemu-edu, allow: {{bind: true, "
                         f"reset: false, write_regions: false}}}}\n")
    out: dict = {"bdf": bdf, "before": state(bdf)}
    base = [sys.executable, "-m", "vfio_conform"]
    check = subprocess.run(base + ["devices", "--inventory", str(inventory)], capture_output=True, text=True)
    out["devices_check"] = {"rc": check.returncode, "stdout": check.stdout}

    progress = WORK / "progress"
    run = subprocess.Popen(base + ["run", "--inventory", str(inventory), "--no-store", "--reports", str(WORK),
                                   "--progress-file", str(progress), "--", "-k", "qemu-edu:CONFIG", "-rs"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    during = None
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:
        if (during is None or not during.get("driver")) and _tests_started(progress):
            during = state(bdf)     # tests run: sampled until the device is seen on vfio-pci (the lease
                                    # binds it in the first test's setup, after its progress line)
        time.sleep(0.05)
    text, _ = run.communicate(timeout=60)
    out["run"] = {"rc": run.returncode, "during": during, "after": state(bdf), "tail": text[-1500:]}

    progress.unlink(missing_ok=True)
    run = subprocess.Popen(base + ["run", "--inventory", str(inventory), "--no-store", "--reports", str(WORK),
                                   "--progress-file", str(progress), "--", "-k", "qemu-edu", "-rs"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    during = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if _tests_started(progress):     # SIGTERM once a test holds the device (the tests before
            during = state(bdf)          # it may be not-supported in their setup, never binding it)
            if during.get("driver"):
                run.send_signal(signal.SIGTERM)
                break
        time.sleep(0.05)
    text, _ = run.communicate(timeout=120)
    out["sigterm"] = {"rc": run.returncode, "during": during, "after": state(bdf), "tail": text[-1500:]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
