"""Lab bench: SET transitions per second on a real mtty, raw fcntl.ioctl loop vs the harness.

Host: `python3 bench/lab_bench.py [--seconds 3]` boots one lab guest and runs itself
inside with `--guest`. Guest: times a raw ioctl loop, then the harness's device layer
(vfio_conform.backends.registry.open_device with the `mtty` profile) on the same cycle.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CYCLE = (5, 1, 5, 2)  # RUNNING_P2P, STOP, RUNNING_P2P, RUNNING: single arcs on flags 7
SET_MIG_STATE = (1 << 17) | 2


def raw_rate(group_node: str, uuid: str, seconds: float) -> float:
    """Transitions per second with bare ioctls through container/group/device fds."""
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    group = os.open(group_node, os.O_RDWR)
    fcntl.ioctl(group, 0x3B68, struct.pack("i", container))
    fcntl.ioctl(container, 0x3B66, 3)
    dev = fcntl.ioctl(group, 0x3B6A, bytearray(uuid.encode() + b"\0"), True)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for state in CYCLE:
            fcntl.ioctl(dev, 0x3B75, bytearray(struct.pack("IIIi", 16, SET_MIG_STATE, state, -1)), True)
        count += len(CYCLE)
    elapsed = time.perf_counter() - start
    for fd in (dev, group, container):
        os.close(fd)
    return count / elapsed


def harness_rate(uuid: str, seconds: float) -> float | str:
    """Same cycle through the harness device layer; a string says why it could not run."""
    try:
        from vfio_conform.backends.registry import open_device
        from vfio_conform.profile import find_profile
        from vfio_conform.uapi.enums import MigState
        device = open_device(find_profile("mtty"), uuid)
    except Exception as exc:  # the harness is optional here: report, do not fail
        return f"unavailable: {type(exc).__name__}: {exc}"
    states = [MigState(s) for s in CYCLE]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for state in states:
            device.set_state(state)
        count += len(states)
    elapsed = time.perf_counter() - start
    device.close()
    return count / elapsed


def guest_main(seconds: float) -> int:
    manifest = json.load(open(os.environ["VFIO_LAB_MANIFEST"]))
    dev = manifest["devices"][0]
    raw = raw_rate(dev["vfio_dev"], dev["uuid"], seconds)
    harness = harness_rate(dev["uuid"], seconds)
    out = {"raw_per_s": round(raw), "raw_us": round(1e6 / raw, 1)}
    if isinstance(harness, float):
        out.update(harness_per_s=round(harness), harness_us=round(1e6 / harness, 1),
                   ratio=round(raw / harness, 2))
    else:
        out["harness"] = harness
    print(json.dumps(out))
    return 0


def host_main(seconds: float) -> int:
    sys.path.insert(0, str(REPO))
    from vfio_conform.qemu_lab import LabConfig, LabSession
    session = LabSession(LabConfig(modules=("mtty",), instances=1, repo=REPO))
    result = session.run(["python3", str(Path(__file__).resolve()), "--guest", "--seconds", str(seconds)],
                         timeout=300 + 4 * seconds)
    print(result.stdout.strip() or result.stderr[-2000:])
    print(json.dumps({"timings": result.timings, "kernel_warnings": result.kernel_warnings}))
    return result.exit_code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guest", action="store_true", help="(inside the lab guest)")
    parser.add_argument("--seconds", type=float, default=3.0)
    ns = parser.parse_args()
    sys.exit(guest_main(ns.seconds) if ns.guest else host_main(ns.seconds))
