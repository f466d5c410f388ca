"""Bench results as JSON files beside the results store, and the comparison of two of them."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

#: A ratio (harness / baseline, lower is better) this much worse than before is a regression.
REGRESSION = 1.2
#: Where each section keeps its ratios: (section, key, True if higher is better).
RATIOS = (("transitions", "ratio_python", False), ("transitions", "ratio_c", False),
          ("streams", "throughput_ratio", True), ("streams", "rss_growth_mib", False),
          ("scaling", "time_per_device_ratio", False), ("scaling", "rss_per_device_ratio", False),
          ("suite", "seconds", False), ("suite", "allure_cpu_ratio", False),
          ("suite", "allure_instruction_ratio", False),
          ("lab_parallel", "speedup", True))


def default_path(reports: Path) -> Path:
    return Path(reports) / "bench" / time.strftime("bench-%Y%m%d-%H%M%S.json")


def save(path: Path, result: dict) -> None:
    """Write `result` with when and where it was measured (atomically: a reader never sees half)."""
    record = {"format": 1, "time": time.time(), "host": platform.node(), "kernel": platform.release(),
              "python": platform.python_version(), "cpus": os.cpu_count(), **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def load(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("format") != 1:
        raise ValueError(f"{path}: not a vfio-conform bench result")
    return data


def compare(old: dict, new: dict) -> list[tuple[str, float, float, bool]]:
    """(name, old, new, regressed) for every ratio both results have."""
    rows = []
    for section, key, higher_better in RATIOS:
        a, b = (old.get(section) or {}).get(key), (new.get(section) or {}).get(key)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not a or not b:
            continue
        worse = (a / b if higher_better else b / a) > REGRESSION
        rows.append((f"{section}.{key}", float(a), float(b), worse))
    return rows


def diff(old_path: Path, new_path: Path) -> int:
    rows = compare(load(old_path), load(new_path))
    if not rows:
        print("no ratio in common between the two bench results")
        return 1
    for name, a, b, worse in rows:
        print(f"{'REGRESSION' if worse else 'ok':10} {name:34} {a:10.3f} -> {b:10.3f}")
    return 1 if any(r[3] for r in rows) else 0
