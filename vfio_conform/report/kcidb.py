"""Stored runs as KernelCI's KCIDB I/O data (`vfio-conform report RUN... --format kcidb`).

One document (KCIDB I/O schema v5.3: version, checkouts, builds, tests) per set of runs:

* a checkout and a build per kernel (the build names the kernel release, its configuration as
  the run captured it, `kernel.config`, and the architecture);
* a test per result, its `path` dotted: `vfio_conform.<profile>.<test>.<parameters>` (each part
  reduced to KCIDB's path characters), its status PASS / FAIL / ERROR / SKIP:

  | outcome | status |
  |---|---|
  | pass | PASS |
  | fail, known-issue (a waived failure: the link in `misc.known_issue`) | FAIL |
  | infra-error | ERROR |
  | not-supported, gated, skipped | SKIP |

* a run that did not finish adds a test `vfio_conform.<profile>` with status ERROR and the reason,
  so an incomplete run never reads as passing;
* every test's `misc` carries the harness build, the host, the rule and the outcome.

`origin` is `vfio_conform` unless $VFIO_CONFORM_KCIDB_ORIGIN names the submitting CI system.
"""
from __future__ import annotations

import datetime
import json
import os
import re

from ..base.verdicts import KCIDB_STATUS
from ..results.environment import of_run
from .formats import ReportFormat

ORIGIN_ENV = "VFIO_CONFORM_KCIDB_ORIGIN"
SCHEMA_VERSION = {"major": 5, "minor": 3}
STATUS = KCIDB_STATUS
_PART = re.compile(r"[^A-Za-z0-9_-]+")


def origin() -> str:
    value = os.environ.get(ORIGIN_ENV, "vfio_conform")
    return re.sub(r"[^a-z0-9_]", "_", value.lower()) or "vfio_conform"


def part(text: str) -> str:
    """One segment of a KCIDB path: letters, digits, '_' and '-' only."""
    return _PART.sub("_", text).strip("_") or "_"


def kcidb_path(profile: str, test_id: str) -> str:
    """'vfio_conform.sim-p2p.test_arc.RUNNING-STOP' from 'test_arc[sim-p2p:RUNNING->STOP]'."""
    name, _, params = test_id.partition("[")
    params = params.rstrip("]")
    if params.startswith(f"{profile}:"):
        params = params[len(profile) + 1:]
    elif params == profile:
        params = ""
    parts = ["vfio_conform", part(profile), part(name)]
    if params:
        parts.append(part(params.replace("->", "-")))
    return ".".join(parts)


def _time(ts) -> str | None:
    if not ts:
        return None
    return datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc).isoformat()


def document(runs: list) -> dict:
    """The KCIDB document of runs (vfio_conform.report.runs.RunData)."""
    org = origin()
    checkouts, builds, tests = {}, {}, []
    for run in runs:
        meta = run.meta
        env = of_run(meta)
        release = meta.get("kernel") or (env.kernel_release if env else "") or "unknown"
        config = ((env.kernel_config if env and env.kernel_config else "")
                  or (f"sha256:{meta['kernel_config']}" if meta.get("kernel_config") else "not recorded"))
        checkout_id = f"{org}:{release}"
        build_id = f"{org}:{release}:{config.split()[0]}"
        checkouts.setdefault(checkout_id, {"id": checkout_id, "origin": org,
                                           "comment": f"Linux {release} as tested by vfio-conform",
                                           "misc": {"kernel_release": release}})
        builds.setdefault(build_id, {
            "id": build_id, "checkout_id": checkout_id, "origin": org,
            "comment": f"Linux {release}", "config_name": part(config.split()[0]).lower()[:64],
            "architecture": part(os.uname().machine).lower(),
            "misc": {"kernel_release": release, "kernel_config": config,
                     "kernel_package": meta.get("kernel_package") or "",
                     "kernel_cmdline": env.kernel_cmdline if env else ""}})
        harness = meta.get("harness_build") or meta.get("harness_version") or ""
        host = meta.get("host") or ""
        environment = {"comment": f"host {host}, devices {meta.get('devices') or '?'} "
                                  f"({meta.get('driver') or '?'})",
                       "misc": {"host": host, "devices": meta.get("devices") or "",
                                "driver": meta.get("driver") or "", "firmware": meta.get("firmware") or ""}}
        common = {"build_id": build_id, "origin": org, "environment": environment}
        for i, row in enumerate(run.rows):
            misc = {"harness_build": harness, "host": host, "run_id": run.id, "session": meta.get("session") or "",
                    "outcome": row["outcome"], "rule": row.get("rule") or "", "test_id": row["test_id"]}
            if row["outcome"] == "known-issue" and row.get("link"):
                misc["known_issue"] = row["link"]
            test = {**common, "id": f"{org}:{meta.get('session') or 'run'}:{run.id}:{i}",
                    "path": kcidb_path(run.profile, row["test_id"]),
                    "status": STATUS.get(row["outcome"], "ERROR"),
                    "comment": f"{row['test_id']}: {(row.get('message') or '').splitlines()[0][:200]}"
                               if row.get("message") else row["test_id"],
                    "duration": float(row.get("duration") or 0.0), "misc": misc}
            start = _time(row.get("recorded"))
            if start:
                test["start_time"] = start
            tests.append(test)
        if (meta.get("status") or "") != "finished":
            tests.append({**common, "id": f"{org}:{meta.get('session') or 'run'}:{run.id}:run",
                          "path": f"vfio_conform.{part(run.profile)}", "status": "ERROR",
                          "comment": f"run #{run.id} did not finish: {meta.get('status')}"
                                     + (f" ({meta.get('reason')})" if meta.get("reason") else ""),
                          "misc": {"harness_build": harness, "host": host, "run_id": run.id,
                                   "status": meta.get("status") or "", "reason": meta.get("reason") or ""}})
    return {"version": dict(SCHEMA_VERSION), "checkouts": list(checkouts.values()),
            "builds": list(builds.values()), "tests": tests}


def render(runs: list) -> str:
    return json.dumps(document(runs), indent=1) + "\n"


KCIDB = ReportFormat("kcidb", ".kcidb.json", render, "KernelCI KCIDB I/O data (JSON, schema v5.3)")
