"""The end of `vfio-conform lab run`: one summary table over every boot's imported runs, with host paths."""
from __future__ import annotations

import sys
from pathlib import Path

from ..base.constants import STORE_NAME
from ..report import end_table, run_json
from ..report.run_end import write_html
from ..report.run_verdicts import ProfileSummary, ReportPaths, from_store
from ..results import StoreError, open_store, store_location


def lab_summary(runs: list, reports: Path, store_arg: str | None,
                json_path: str | None = None) -> list[ProfileSummary]:
    """Summaries of the runs the boots imported (LabRun.run_ids), HTML per boot, one JSON file;
    prints the table. Boots that imported nothing (a guest that never started) are left out."""
    location = store_location(store_arg, reports / STORE_NAME)
    if not any(r.run_ids for r in runs):
        return []
    json_file = Path(json_path).absolute() if json_path else \
        reports.absolute() / "lab" / f"{runs[0].run_dir.name}-summary.json"
    try:
        store = open_store(location, readonly=True)
    except StoreError as exc:
        print(f"vfio-conform lab: no summary: {exc}", file=sys.stderr)
        return []
    profiles: list[ProfileSummary] = []
    try:
        for run in runs:
            if not run.run_ids:
                continue
            home = reports.absolute() / "runs" / f"lab-{run.run_dir.name}"
            html = write_html(location, run.run_ids, home / "report.html")
            junit = _junit(run, reports)
            allure = home / "allure-results"
            paths = ReportPaths(html=html, junit=junit, json=str(json_file),
                                allure=str(allure) if allure.exists() else None)
            rows = [r for r in (store.run(i) for i in run.run_ids) if r is not None]
            profiles += from_store(store, rows, paths)
    finally:
        store.close()
    run_json.write(profiles, json_file)
    sys.stdout.write("\n" + end_table.render(profiles))
    sys.stdout.flush()
    return profiles


def _junit(run, reports: Path) -> str | None:
    """The host copy of the guest's JUnit file (the guest's run dir, copied as runs/lab-<name>)."""
    guest_runs = run.run_dir / "reports" / "runs"
    for src in sorted(guest_runs.glob("*")) if guest_runs.exists() else []:
        path = reports.absolute() / "runs" / f"lab-{src.name}" / "junit.xml"
        if path.exists():
            return str(path)
    return None
