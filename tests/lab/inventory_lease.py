"""Runs in the mtty lab guest: four mtty instances as two source/destination pairs of one profile
in an inventory; the arc suite with one xdist worker, then with `-n auto` (one worker per pair).
Prints one JSON object: exit codes, wall times, which workers and groups ran tests."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

WORK = Path("/tmp/vc-inventory-lease")


def mtty_instances() -> list[str]:
    bus = Path("/sys/bus/mdev/devices")
    return sorted(d.name for d in bus.iterdir() if os.path.basename(os.readlink(d / "mdev_type")) == "mtty-2")


def run(inventory: Path, workers: str) -> dict:
    argv = [sys.executable, "-m", "vfio_conform", "run", "--inventory", str(inventory), "--no-store",
            "--reports", str(WORK), "-n", workers, "--", "-k", "test_arc", "-v", "-v"]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1500)
    seconds = time.monotonic() - start
    out = done.stdout
    return {"rc": done.returncode, "seconds": round(seconds, 1),
            "workers": sorted(set(re.findall(r"\[(gw\d+)\] \[", out))),
            "groups": sorted(set(re.findall(r"@(mtty#\d)", out))),
            "summary": [line for line in out.splitlines() if line.startswith("mtty: run")],
            "tail": out[-1200:] + done.stderr[-600:]}


def main() -> int:
    uuids = mtty_instances()
    WORK.mkdir(parents=True, exist_ok=True)
    inventory = WORK / "inventory.yaml"
    lines = [f"lease_dir: {WORK}/leases", "devices:"]
    for i, uuid in enumerate(uuids[:4]):
        peer = f", peer: m{i + 1}" if i % 2 == 0 else ""
        lines.append(f"  - {{name: m{i}, mdev: {{uuid: {uuid}, type: mtty-2}}, profile: mtty{peer}}}")
    inventory.write_text("\n".join(lines) + "\n")
    out = {"instances": len(uuids), "one": run(inventory, "1"), "auto": run(inventory, "auto")}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
