"""A large sim device state migrated source -> destination with bounded memory, against a C pipe loop.

Each size runs in its own process (`python3 -m vfio_conform.bench.streams SIZE`) so its peak
resident memory (VmHWM) is its own: the run with the requested state is compared with the same run
on a 1 MiB state. The migration: the source enters PRE_COPY and sends its initial data and a few
rounds of dirty data (the sim keeps dirtying blocks), then STOP_COPY; every byte goes straight into
the destination's resuming fd (`DataFd.copy_to`, one chunk in memory, a running xxh3_128); the
destination checks every block and the end digest at RESUMING -> STOP. Then both devices save their
state again (STOP -> STOP_COPY) and the two stream digests must be equal: the content arrived,
verified without keeping a copy.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

from .cloop import CLoops

BASELINE_SIZE = 1 << 20
PRECOPY_ROUNDS = 3
CHUNK = 4 << 20          # read size: the sim returns one whole record (1 MiB block) per read


def _hwm_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def migrate(state_size: int, rounds: int = PRECOPY_ROUNDS) -> dict:
    """Run one migration of a generated `state_size`-byte state in this process (see module doc)."""
    from ..backends.sim.config import SimConfig
    from ..backends.sim.transport import SimTransport
    from ..device import Device
    from ..uapi.enums import MigState as S
    cfg = SimConfig.from_dict({"flags": 7, "state_size": state_size, "generated_state": True,
                               "dirty_blocks": 4})
    src, dst = Device(SimTransport(cfg, "stream-src")), Device(SimTransport(cfg, "stream-dst"))
    try:
        before = _hwm_kib()
        moved, start = 0, time.perf_counter()
        src.set_state(S.PRE_COPY)
        out_fd = src.open_data_fds()[0]
        dst.set_state(S.STOP)
        in_fd = dst.set_state(S.RESUMING)
        for _ in range(rounds):
            moved += out_fd.copy_to(in_fd, CHUNK, allow_enomsg=True).length
        src.set_state(S.STOP_COPY)
        moved += out_fd.copy_to(in_fd, CHUNK).length
        seconds = time.perf_counter() - start
        out_fd.close()
        dst.set_state(S.STOP)                       # RESUMING -> STOP: the destination checks it all
        in_fd.close()
        src.set_state(S.STOP)
        digests = []
        for dev in (src, dst):
            with dev.set_state(S.STOP_COPY) as fd:
                digests.append(fd.drain(CHUNK).digest)
            dev.set_state(S.STOP)
        return {"state_size": state_size, "moved": moved, "seconds": round(seconds, 4),
                "mib_s": round(moved / seconds / (1 << 20), 1), "verified": digests[0] == digests[1],
                "digest": digests[0], "hwm_kib": _hwm_kib(), "hwm_before_kib": before}
    finally:
        src.close()
        dst.close()


def sim_rates(state_size: int, repeats: int = 3) -> dict:
    """The sim's own speed on a generated state, without the harness: a STOP_COPY stream read
    straight from the source's transport and each read written straight into a resuming sim, the
    read calls (producing) and the write calls (checking) timed apart; best of `repeats` passes."""
    from ..backends.sim.config import SimConfig
    from ..backends.sim.transport import SimTransport
    from ..device import Device
    from ..uapi.enums import MigState as S
    cfg = SimConfig.from_dict({"flags": 1, "state_size": state_size, "generated_state": True})
    src, dst = Device(SimTransport(cfg, "rate-src")), Device(SimTransport(cfg, "rate-dst"))
    clock = time.perf_counter
    best = {"produce": float("inf"), "check": float("inf"), "both": float("inf")}
    produced = 0
    try:
        t, w = src.transport, dst.transport
        for _ in range(repeats):
            src.set_state(S.STOP)
            dst.set_state(S.STOP)
            fd = src.set_state(S.STOP_COPY)
            in_fd = dst.set_state(S.RESUMING)
            produce = check = 0.0
            produced = 0
            start = clock()
            while True:
                a = clock()
                data = t.read(fd.fd, CHUNK)
                b = clock()
                if not data:
                    break
                w.write(in_fd.fd, data)
                produce, check = produce + b - a, check + clock() - b
                produced += len(data)
            both = clock() - start
            fd.close()
            dst.set_state(S.STOP)                   # the destination accepts what it checked
            in_fd.close()
            for key, value in (("produce", produce), ("check", check), ("both", both)):
                best[key] = min(best[key], max(value, 1e-9))
        mib = produced / (1 << 20)
        return {"bytes": produced, "repeats": repeats, "produce_mib_s": round(mib / best["produce"], 1),
                "check_mib_s": round(mib / best["check"], 1),
                "produce_and_check_mib_s": round(mib / best["both"], 1)}
    finally:
        src.close()
        dst.close()


def _child(state_size: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vfio_conform.bench.streams", str(state_size)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"stream migration of {state_size} bytes failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(state_size: int, cloops: CLoops | None = None) -> dict:
    """Both runs, the C pipe loop over as many bytes as the big run moved (up to 2 GiB), ratios; the
    harness's copy path on real pipes against a C copy loop (bench/pipecopy.py); the sim's own rates."""
    from . import pipecopy
    base = _child(BASELINE_SIZE)
    big = _child(state_size)
    cloops = cloops or CLoops()
    copy = pipecopy.measure(min(max(state_size, 256 << 20), 1 << 30), cloops=cloops)
    c_mib_s = cloops.pipe_mib_s(min(big["moved"], 2 << 30), 1 << 20)
    growth = (big["hwm_kib"] - base["hwm_kib"]) / 1024
    out = {"state_size": state_size, "moved": big["moved"], "seconds": big["seconds"],
           "harness_mib_s": big["mib_s"], "c_pipe_mib_s": c_mib_s, "verified": big["verified"],
           "baseline_verified": base["verified"], "rss_baseline_mib": round(base["hwm_kib"] / 1024, 1),
           "rss_mib": round(big["hwm_kib"] / 1024, 1), "rss_growth_mib": round(growth, 1),
           "throughput_ratio": round(big["mib_s"] / c_mib_s, 3) if c_mib_s else None}
    if c_mib_s is None:
        out["c_note"] = cloops.errors.get("pipe_loop", "")
    out["pipe_copy"] = copy
    out["copy_ratio"] = copy.get("ratio")
    out["sim"] = sim_rates(min(state_size, 1 << 30))
    copy_rate = copy.get("harness_mib_s")
    out["sim_keeps_up"] = bool(copy_rate) and min(out["sim"]["produce_mib_s"], out["sim"]["check_mib_s"]) >= copy_rate
    out["ok"] = bool(big["verified"] and base["verified"] and growth <= 64)
    return out


def render(res: dict) -> str:
    from . import pipecopy
    lines = [_render_migration(res)]
    if "pipe_copy" in res:
        lines.append(pipecopy.render(res["pipe_copy"]))
    if "sim" in res:
        sim = res["sim"]
        copy_rate = (res.get("pipe_copy") or {}).get("harness_mib_s")
        beside = (f"; the harness's copy path above: {copy_rate:.0f} MiB/s -> the sim is "
                  f"{'at least as fast' if res.get('sim_keeps_up') else 'SLOWER'} (target: sim >= copy path)"
                  if copy_rate else "")
        lines.append(f"sim alone (no harness): produces {sim['produce_mib_s']:.0f} MiB/s, checks "
                     f"{sim['check_mib_s']:.0f} MiB/s, both in one process {sim['produce_and_check_mib_s']:.0f} "
                     f"MiB/s{beside} (the end-to-end figure above: {res['harness_mib_s']:.0f} MiB/s)")
    return "\n".join(lines)


def _render_migration(res: dict) -> str:
    size = res["state_size"] / (1 << 20)
    c = (f"C pipe loop {res['c_pipe_mib_s']:.0f} MiB/s -> {res['throughput_ratio']:.2f}x "
         f"(target >= {res.get('target_throughput', 0.8)})" if res["c_pipe_mib_s"]
         else f"C pipe loop n/a ({res.get('c_note', '')})")
    return (f"streams: {size:.0f} MiB state + pre-copy rounds, {res['moved'] / (1 << 20):.0f} MiB moved "
            f"src -> dst in {res['seconds']:.2f} s, content {'verified' if res['verified'] else 'DIFFERS'} "
            f"by digest; data_fd {res['harness_mib_s']:.0f} MiB/s vs {c}; peak RSS {res['rss_mib']:.0f} MiB, "
            f"{res['rss_growth_mib']:+.1f} MiB over the 1 MiB-state run (target <= "
            f"{res.get('target_rss_mib', 64)})")


if __name__ == "__main__":
    print(json.dumps(migrate(int(sys.argv[1]))))
