"""The raw parallel ceiling of a machine: the bare Python SET loop (bench/transitions.py) on one
device alone, then on N devices at once in N processes, each doing the same number of SETs.

`N * (time alone) / (slowest time together)` is how many times more work the machine does when N
processes drive N devices: what any harness can at best reach there with N workers. Under TCG the
guest's vCPUs share the host's cores with QEMU's own threads, so it is below N.

Run where the devices are: `python3 -m vfio_conform.bench.rawpar PROFILE DEV [DEV...]` prints JSON.
"""
from __future__ import annotations

import json
import multiprocessing
import sys
import time

ROUNDS_FOR_S = 2.0        # the lone loop runs about this long


def _loop(profile: str, dev: str, rounds: int, barrier, out) -> None:
    from ..backends.registry import open_device
    from ..profile import find_profile
    from .transitions import _bare, cycle_for
    device = open_device(find_profile(profile), dev)
    try:
        cycle = cycle_for(device.migration_flags())
        if barrier is not None:
            barrier.wait()
        out.put(_bare(device, cycle, rounds))
    finally:
        device.close()


def _run(profile: str, devs: list[str], rounds: int) -> list[float]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    barrier = ctx.Barrier(len(devs)) if len(devs) > 1 else None
    procs = [ctx.Process(target=_loop, args=(profile, dev, rounds, barrier, out)) for dev in devs]
    for proc in procs:
        proc.start()
    times = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(60)
    return times


def measure(profile: str, devs: list[str]) -> dict:
    rounds = 200
    while (alone := _run(profile, devs[:1], rounds)[0]) < ROUNDS_FOR_S / 4 and rounds < 1 << 22:
        rounds *= 2
    rounds = max(1, int(rounds * ROUNDS_FOR_S / alone))
    alone = _run(profile, devs[:1], rounds)[0]
    together = _run(profile, devs, rounds)
    n = len(devs)
    return {"profile": profile, "devices": n, "rounds": rounds, "alone_s": round(alone, 3),
            "together_s": [round(t, 3) for t in together],
            "ceiling": round(n * alone / max(together), 3)}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) < 3:
        print("usage: python3 -m vfio_conform.bench.rawpar PROFILE DEV DEV [DEV...]", file=sys.stderr)
        return 2
    start = time.monotonic()
    res = measure(args[0], args[1:])
    res["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
