"""Time and memory of the same per-device work over 1, 2, 4 and 8 sim devices (one process each).

Per device: open it (4 MiB of state held by the sim), walk the single-arc cycle 200 times, save its
STOP_COPY stream (drained, digested); every device stays open to the end, so a
process holds all N. A least-squares line through the four points gives the
fixed cost, the cost per device and r2 (1.0: the points lie on the line); the cost of the last
doubling per added device against that slope is about 1 if growth is linear and 2 if quadratic.
Memory is VmHWM above an empty run (N = 0).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

COUNTS = (1, 2, 4, 8)
STATE = 4 << 20
ARC_ROUNDS = 200


def _hwm_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def workload(n: int) -> dict:
    """The work for `n` devices in this process (n = 0: imports only, the memory floor)."""
    from ..backends.sim.config import SimConfig
    from ..backends.sim.transport import SimTransport
    from ..device import Device
    from ..uapi.enums import MigState as S
    from .transitions import cycle_for
    cfg = SimConfig.from_dict({"flags": 7, "state_size": STATE})
    devices, start = [], time.perf_counter()
    for i in range(n):
        dev = Device(SimTransport(cfg, f"scale{i}"))
        devices.append(dev)
        for _ in range(ARC_ROUNDS):
            for state in cycle_for(7):
                dev.set_state(state)
    for dev in devices:
        with dev.set_state(S.STOP_COPY) as out:
            out.drain()
        dev.set_state(S.RUNNING)
    seconds = time.perf_counter() - start
    hwm = _hwm_kib()
    for dev in devices:
        dev.close()
    return {"devices": n, "seconds": round(seconds, 4), "hwm_kib": hwm}


def _child(n: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vfio_conform.bench.scaling", str(n)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"scaling run with {n} devices failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit(xs, ys) -> tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, r2); r2 near 1 means the points lie on a line."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    ss = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum((y - a - b * x) ** 2 for x, y in zip(xs, ys)) / ss if ss else 1.0
    return a, b, r2


def measure(counts=COUNTS) -> dict:
    floor = _child(0)["hwm_kib"]
    runs = []
    for n in counts:           # the faster of two runs: a loaded machine only ever adds time
        runs.append(min((_child(n) for _ in range(2)), key=lambda r: r["seconds"]))
    xs = [r["devices"] for r in runs]
    ta, tb, tr2 = fit(xs, [r["seconds"] for r in runs])
    ma, mb, mr2 = fit(xs, [(r["hwm_kib"] - floor) / 1024 for r in runs])
    # growth from the last doubling against the fitted slope: about 1 if linear, 2 if quadratic
    last, prev = runs[-1], runs[-2]
    dn = last["devices"] - prev["devices"]
    t_ratio = ((last["seconds"] - prev["seconds"]) / dn) / tb if tb > 0 else None
    m_ratio = ((last["hwm_kib"] - prev["hwm_kib"]) / 1024 / dn) / mb if mb > 0 else None
    return {"runs": runs, "floor_mib": round(floor / 1024, 1),
            "seconds_per_device": round(tb, 4), "seconds_fixed": round(ta, 4), "time_r2": round(tr2, 4),
            "mib_per_device": round(mb, 2), "mib_fixed": round(ma, 2), "rss_r2": round(mr2, 4),
            "time_per_device_ratio": None if t_ratio is None else round(t_ratio, 3),
            "rss_per_device_ratio": None if m_ratio is None else round(m_ratio, 3)}


def render(res: dict) -> str:
    rows = ", ".join(f"{r['devices']}: {r['seconds']:.2f} s {(r['hwm_kib'] / 1024 - res['floor_mib']):.0f} MiB"
                     for r in res["runs"])
    return (f"scaling over sim devices ({rows}): time {res['seconds_fixed']:.2f} s + "
            f"{res['seconds_per_device']:.3f} s/device (r2 {res['time_r2']:.3f}), memory "
            f"{res['mib_fixed']:.1f} MiB + {res['mib_per_device']:.2f} MiB/device (r2 {res['rss_r2']:.3f}); "
            f"last doubling vs the fitted slope: time x{res['time_per_device_ratio']}, "
            f"memory x{res['rss_per_device_ratio']} (1 = linear, 2 = quadratic)")


if __name__ == "__main__":
    print(json.dumps(workload(int(sys.argv[1]))))
