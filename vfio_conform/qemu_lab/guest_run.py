"""In the lab guest: run the conformance as one or several `vfio-conform run` processes, each on its
own profiles, then pack the reports for the host.

Several workers in the guest are several processes, not xdist workers: a profile's devices are its
own, so profiles split across processes with nothing to share but the result store (SQLite in the
guest's tmpfs, with real locks). Measured in the TCG guest, two independent processes finish the
four mtty variants 1.4x faster than one, while two xdist workers (a controller receiving every
report, each worker collecting every profile) were slower than one process.

Usage (what qemu_lab/harness.py writes): python3 -m vfio_conform.qemu_lab.guest_run SPEC_JSON, where SPEC_JSON
is {"commands": [argv, ...], "outputs": dir, "pack": [tar argv]}.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from ..base.exitcodes import combine


def run(commands: list[list[str]], outputs: str) -> int:
    """Run the commands at once; one alone writes straight to our stdout, several each to a file
    under `outputs` that is copied to our stdout, one after the other, when all have ended."""
    if len(commands) == 1:
        return subprocess.run(commands[0], stdin=subprocess.DEVNULL).returncode
    Path(outputs).mkdir(parents=True, exist_ok=True)
    logs = [Path(outputs) / f"worker-{i}.txt" for i in range(len(commands))]
    procs = []
    for cmd, log in zip(commands, logs):
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT))
    codes = [proc.wait() for proc in procs]
    for i, log in enumerate(logs):
        sys.stdout.write(f"===== guest worker {i} (exit {codes[i]}) =====\n")
        sys.stdout.write(log.read_text(errors="replace"))
    sys.stdout.flush()
    return int(combine(codes))


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    start = time.monotonic()
    code = run(spec["commands"], spec["outputs"])
    ran = time.monotonic()
    packed = subprocess.run(spec["pack"], stdin=subprocess.DEVNULL)
    if packed.returncode != 0:
        print(f"vfio-conform lab: packing the reports failed ({packed.returncode})", file=sys.stderr)
    print(f"vfio-conform lab: guest command: {len(spec['commands'])} process(es) {ran - start:.1f} s, "
          f"packing the reports {time.monotonic() - ran:.1f} s", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
