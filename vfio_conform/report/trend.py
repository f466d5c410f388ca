"""`results --profile X`: pass/fail counts over a profile's stored runs, oldest first, with a bar."""
from __future__ import annotations

import sys
import time
from typing import TextIO

_COLS = ("pass", "fail", "known-issue", "infra-error", "not-supported", "gated", "skipped")


def trend_rows(store, profile: str, limit: int = 20) -> list[dict]:
    """[{run, started, kernel, driver, status, counts{outcome: n}}] of the last `limit` runs, oldest first."""
    out = []
    for run in reversed(store.runs(limit=limit, profile=profile)):
        out.append({"run": run["id"], "started": run["started"], "kernel": run.get("kernel") or "",
                    "driver": run.get("driver") or "", "status": run["status"],
                    "counts": store.summary(run["id"])})
    return out


def print_trend(store, profile: str, limit: int = 20, out: TextIO | None = None) -> int:
    """Print the trend table; returns 0 (1 when the profile has no runs)."""
    out = out or sys.stdout
    rows = trend_rows(store, profile, limit)
    if not rows:
        print(f"no runs of profile {profile!r} in {getattr(store, 'url', 'the store')}", file=out)
        return 1
    print(f"trend of {profile}: last {len(rows)} run(s), oldest first", file=out)
    print(f"{'run':>6} {'started':19} {'kernel':22} {'status':11} "
          + " ".join(f"{c[:8]:>8}" for c in _COLS) + "  pass rate", file=out)
    prev_fail = None
    for r in rows:
        c = r["counts"]
        ran = c.get("pass", 0) + c.get("fail", 0) + c.get("known-issue", 0) + c.get("infra-error", 0)
        rate = c.get("pass", 0) / ran if ran else 0.0
        bar = "#" * round(rate * 20) + "." * (20 - round(rate * 20))
        mark = ""
        if prev_fail is not None and c.get("fail", 0) != prev_fail:
            mark = "  ▲ fail" if c.get("fail", 0) > prev_fail else "  ▼ fail"
        prev_fail = c.get("fail", 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"]))
        print(f"#{r['run']:>5} {started:19} {r['kernel'][:22]:22} {r['status'][:11]:11} "
              + " ".join(f"{c.get(k, 0):>8}" for k in _COLS) + f"  {bar} {rate:6.1%}{mark}", file=out)
    return 0
