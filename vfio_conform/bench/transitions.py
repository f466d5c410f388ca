"""Cost of one SET MIG_DEVICE_STATE through the Device interface against raw loops on the same device.

Three loops over the same single-arc cycle, interleaved round by round so that load on the machine
hits them alike: the harness (`Device.set_state`), a bare Python loop (`fcntl.ioctl` on the device
fd; on the sim, which has no kernel ioctl, the transport's own `ioctl` entry) and a C loop (real
devices only) on the very same fd.
"""
from __future__ import annotations

import fcntl
import statistics
import struct
import time

from ..backends.kernel.transport import KernelTransport
from ..model.fsm import single_arcs
from ..uapi.enums import Feature, FeatureOp, MigState
from ..uapi.ioctl import number
from .cloop import CLoops

FEATURE = number("VFIO_DEVICE_FEATURE")
SET_FLAGS = int(FeatureOp.SET) | int(Feature.MIG_DEVICE_STATE)
_REQUEST = struct.Struct("=IIIi")


def cycle_for(flags: int) -> list[MigState]:
    """A closed walk of single arcs from RUNNING, as long as the flag set allows."""
    arcs = single_arcs(flags)
    if (MigState.RUNNING, MigState.RUNNING_P2P) in arcs:
        return [MigState.RUNNING_P2P, MigState.STOP, MigState.RUNNING_P2P, MigState.RUNNING]
    return [MigState.STOP, MigState.RUNNING]


def _harness(device, cycle, rounds: int) -> float:
    set_state = device.set_state
    start = time.perf_counter()
    for _ in range(rounds):
        for state in cycle:
            set_state(state)
    return time.perf_counter() - start


def _bare(device, cycle, rounds: int) -> float:
    """The least Python can do per SET and still see its result: pack the request, ioctl, unpack the
    state and data_fd the kernel wrote back (errors raise, as any Python ioctl does)."""
    fd, kernel = device.transport.device_fd, isinstance(device.transport, KernelTransport)
    states = [int(s) for s in cycle]
    pack, unpack = _REQUEST.pack, _REQUEST.unpack_from
    ioctl = fcntl.ioctl if kernel else device.transport.ioctl
    start = time.perf_counter()
    if kernel:
        for _ in range(rounds):
            for s in states:
                buf = bytearray(pack(16, SET_FLAGS, s, -2))
                ioctl(fd, FEATURE, buf, True)
                unpack(buf)
    else:
        for _ in range(rounds):
            for s in states:
                buf = bytearray(pack(16, SET_FLAGS, s, -2))
                ioctl(fd, FEATURE, buf)
                unpack(buf)
    return time.perf_counter() - start


def measure(device, seconds: float = 3.0, cloops: CLoops | None = None) -> dict:
    """{'harness_us', 'python_us', 'c_us' (or None), 'ratio_python', 'ratio_c', 'cycle', ...}."""
    flags = device.migration_flags()
    cycle = cycle_for(flags)
    device.set_state(MigState.RUNNING)
    per_round = max(seconds / 10, 0.01)
    rounds = 10
    while _harness(device, cycle, rounds) < per_round / 4 and rounds < 1 << 22:
        rounds *= 2
    rounds *= 4
    n = rounds * len(cycle)
    harness, bare = [], []
    for _ in range(5):
        bare.append(_bare(device, cycle, rounds) / n)
        harness.append(_harness(device, cycle, rounds) / n)
    kernel = isinstance(device.transport, KernelTransport)
    c_us, c_note = None, "sim: an in-process device has no kernel ioctl for C to call"
    if kernel:
        cloops = cloops or CLoops()
        ns = cloops.set_loop_ns(device.transport.device_fd, FEATURE, SET_FLAGS, [int(s) for s in cycle],
                                rounds * 4)
        c_us = None if ns is None else ns / 1000
        c_note = cloops.errors.get("set_loop", "")
    h, p = statistics.median(harness) * 1e6, statistics.median(bare) * 1e6
    out = {"device": device.name, "backend": "kernel" if kernel else "sim",
           "cycle": [s.name for s in cycle], "sets_per_round": n,
           "harness_us": round(h, 3), "python_us": round(p, 3), "ratio_python": round(h / p, 3),
           "c_us": None if c_us is None else round(c_us, 3),
           "ratio_c": None if not c_us else round(h / c_us, 3)}
    if c_us is None:
        out["c_note"] = c_note
    return out


def render(res: dict, target: float) -> str:
    verdict = "within" if res["ratio_python"] <= target else "OVER"
    c = (f"C loop {res['c_us']:.2f} us (harness {res['ratio_c']:.1f}x C)" if res["c_us"]
         else f"C loop n/a ({res.get('c_note', '')})")
    return (f"transitions on {res['device']} ({res['backend']}, {'/'.join(res['cycle'])}): harness "
            f"{res['harness_us']:.2f} us/SET, bare Python {res['python_us']:.2f} us/SET -> "
            f"{res['ratio_python']:.2f}x ({verdict} the {target}x target); {c}")
