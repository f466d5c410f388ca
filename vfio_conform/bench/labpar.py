"""Parallel devices in the real-kernel lab: the same mtty conformance run with one pytest process
and with N xdist workers (each profile's two devices stay on one worker), wall time including boot.

Needs the lab (root, QEMU; wrap the command in `flock /tmp/vc-lab.lock`). The guest has
`LabConfig.cpus` vCPUs under TCG on this host: more workers than vCPUs cannot run at once. A third
boot measures the guest's raw parallel ceiling (bench/rawpar.py), the most any harness could reach.
"""
from __future__ import annotations

import json
import time

from ..base.constants import reports_dir

LAB_PROFILES = ("mtty", "mtty-sc", "mtty-p2p", "mtty-pc")
#: The whole mtty conformance in the lab (every variant, boot included), seconds, at most.
WHOLE_RUN_TARGET_S = 60.0


def _one(workers: str | None, profiles, extra) -> tuple[float, list, float | None, float | None]:
    """Wall time, exit codes, the guest command's own seconds (guest.json; boot and the host's
    import excluded) and the test sessions' seconds (the longest of the guest processes' status
    files) of one lab run; its console, logs and store are kept under reports/bench/ (a failed
    run's error message points there)."""
    from ..qemu_lab.harness import run_lab
    out = reports_dir() / "bench" / f"lab-{time.strftime('%Y%m%d-%H%M%S')}-workers-{workers or 1}"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs = run_lab(list(profiles), out, str(out / "store.sqlite"), workers, list(extra))
    wall = time.perf_counter() - start
    command = sessions = None
    try:
        command = sum(json.loads((r.run_dir / "guest.json").read_text())["command_seconds"]
                      for r in runs)
        sessions = sum(max(json.loads(f.read_text())["elapsed"] for f in r.run_dir.glob("progress*.json"))
                       for r in runs)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return wall, [r.exit_code for r in runs], command, sessions


def raw_ceiling(workers: int) -> dict:
    """The guest's own parallel ceiling (bench/rawpar.py: bare SET loops on `workers` mtty devices,
    alone and at once), in a boot of its own; {"error": ...} when it could not be measured."""
    from ..qemu_lab.config import LabConfig
    from ..qemu_lab.errors import LabError
    from ..qemu_lab.session import LabSession
    session = LabSession(LabConfig(mode="mdev", modules=("mtty",), instances=workers))
    devs = [f"@DEV{i}@" for i in range(workers)]
    try:
        result = session.run(["python3", "-m", "vfio_conform.bench.rawpar", "mtty", *devs], timeout=600)
    except LabError as exc:
        return {"error": str(exc)}
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"exit {result.exit_code}: {result.stderr[-500:]}"}


def measure(workers: int = 2, profiles=LAB_PROFILES, extra=()) -> dict:
    from ..qemu_lab.config import LabConfig
    serial, serial_codes, serial_cmd, serial_tests = _one(None, profiles, extra)
    parallel, par_codes, par_cmd, par_tests = _one(str(workers), profiles, extra)
    raw = raw_ceiling(workers)
    speedup = serial / parallel
    return {"profiles": list(profiles), "workers": workers, "guest_cpus": LabConfig().cpus,
            "serial_s": round(serial, 1), "parallel_s": round(parallel, 1), "speedup": round(speedup, 3),
            "efficiency": round(speedup / workers, 3), "exit_serial": serial_codes, "exit_parallel": par_codes,
            "whole_run_target_s": WHOLE_RUN_TARGET_S, "raw": raw,
            "serial_command_s": serial_cmd, "parallel_command_s": par_cmd,
            "command_speedup": round(serial_cmd / par_cmd, 3) if serial_cmd and par_cmd else None,
            "serial_sessions_s": serial_tests, "parallel_sessions_s": par_tests,
            "sessions_speedup": round(serial_tests / par_tests, 3) if serial_tests and par_tests else None,
            "of_ceiling": round(speedup / raw["ceiling"], 3) if raw.get("ceiling") else None}


def _command_line(res: dict) -> str:
    lines = []
    for key, what in (("command", "the guest's command alone (boot and the host's import excluded)"),
                      ("sessions", "the test sessions alone (each process's start-up excluded)")):
        if not res.get(f"{key}_speedup"):
            lines.append(f"{what}: not measured")
            continue
        lines.append(f"{what}: 1 process {res[f'serial_{key}_s']:.0f} s, {res['workers']} workers "
                     f"{res[f'parallel_{key}_s']:.0f} s -> {res[f'{key}_speedup']:.2f}x = "
                     f"{res[f'{key}_speedup'] / res['workers']:.2f} N")
    return "\n".join(lines)


def _ceiling_line(res: dict) -> str:
    raw = res.get("raw") or {}
    if not raw.get("ceiling"):
        return f"raw parallel ceiling of the guest: not measured ({raw.get('error', 'no result')})"
    return (f"raw parallel ceiling of the guest (bare SET loops, {raw['devices']} processes on "
            f"{raw['devices']} mtty devices against one alone): {raw['ceiling']:.2f}x; the harness's "
            f"speed-up is {res['of_ceiling']:.2f} of it")


def render(res: dict) -> str:
    if any(code != 0 for code in res["exit_serial"] + res["exit_parallel"]):
        return (f"lab parallel devices ({', '.join(res['profiles'])}): a run did not finish "
                f"(exits {res['exit_serial']} / {res['exit_parallel']}): no speed-up measured "
                f"(1 process {res['serial_s']:.0f} s, {res['workers']} workers {res['parallel_s']:.0f} s)")
    return (f"lab parallel devices ({', '.join(res['profiles'])}; guest {res['guest_cpus']} vCPUs, TCG): "
            f"1 process {res['serial_s']:.0f} s, {res['workers']} workers {res['parallel_s']:.0f} s -> "
            f"speed-up {res['speedup']:.2f}x = {res['efficiency']:.2f} N (target 0.8 N); exits "
            f"{res['exit_serial']} / {res['exit_parallel']}\n"
            f"{_command_line(res)}\n{_ceiling_line(res)}\n"
            f"whole mtty conformance in the lab ({len(res['profiles'])} variants, boot included, "
            f"{res['workers']} workers): {res['parallel_s']:.0f} s "
            f"({'within' if res['parallel_s'] <= WHOLE_RUN_TARGET_S else 'OVER'} the "
            f"{WHOLE_RUN_TARGET_S:.0f} s target)")
