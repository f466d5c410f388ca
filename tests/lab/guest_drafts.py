"""Guest side of the draft-profile lab test: for every lab device (group), write a draft profile with
`vfio-conform profile new` and run the suites with that draft, unedited, on the same device(s).

Runs inside a lab guest, cwd = the repo. Groups: each mtty variant's two instances (source and
destination); in pci mode edu0 alone, the two ivshmem devices together, any other role alone.
Drafts go to RESULTS/drafts/, the outcome of each group to RESULTS/drafts.json. Arguments after
`--` go to pytest (a subset for a quick look; none: every suite).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path("/vfio-lab/results")
REPO = Path(__file__).resolve().parents[2]


def groups(manifest: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dev in manifest["devices"]:
        if manifest["mode"] == "mdev":
            key = dev["module"]
        else:
            key = "ivshmem" if dev["role"].startswith("ivshmem") else dev["role"]
        out.setdefault(key, []).append(dev["id"])
    return out


def vc(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "vfio_conform", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def main(extra: list[str]) -> int:
    manifest = json.load(open(os.environ["VFIO_LAB_MANIFEST"]))
    drafts = RESULTS / "drafts"
    drafts.mkdir(parents=True, exist_ok=True)
    report = {}
    for group, ids in groups(manifest).items():
        path = drafts / f"{group}.yaml"
        args = ["profile", "new", "--name", f"{group.replace('_', '-')}-draft", "-o", str(path)]
        for device_id in ids:
            args += ["--from-device", device_id]
        new = vc(*args, timeout=120)
        entry = {"devices": ids, "new_exit": new.returncode, "new_stderr": new.stderr[-2000:]}
        if new.returncode == 0:
            run = vc("run", "--profile", str(path), "--no-store", "-q", "--reports", f"/tmp/drafts-{group}",
                     *(["--", *extra] if extra else []), timeout=40 * 60)
            lines = run.stdout.splitlines()
            entry.update(run_exit=run.returncode,
                         summary=next((line for line in lines if line.startswith(f"{group.replace('_', '-')}-draft: run")), ""),
                         tail="\n".join(lines[-40:]), stderr=run.stderr[-2000:])
        report[group] = entry
        print(f"{group}: {entry.get('summary') or entry}", flush=True)
    (RESULTS / "drafts.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(argv[argv.index("--") + 1:] if "--" in argv else []))
