"""The end of `vfio-conform lab run` and `lab matrix`: one summary table over every boot's imported
runs, with host paths, and the CI files the command line asked for (JUnit, KTAP, Allure) over them."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..base.constants import STORE_NAME
from ..base.outfile import OutputError, check_dir, check_file
from ..report import end_table, run_json
from ..report.run_end import write_html
from ..report.run_verdicts import ProfileSummary, ReportPaths, from_store
from ..results import StoreError, open_store, store_location


@dataclass(frozen=True)
class Outputs:
    """The files `lab run`/`lab matrix` write over every boot's runs, as `run` names them:
    `--json` (the summary), `--ktap`, `--junit`, `--allure`; None: not written. `kernel_names`:
    each suite is named `<profile> (kernel <release>)` (one profile on several kernels)."""

    json: str | None = None
    ktap: str | None = None
    junit: str | None = None
    allure: str | None = None
    kernel_names: bool = False

    @classmethod
    def from_args(cls, args, kernel_names: bool = False) -> Outputs:
        return cls(args.json, getattr(args, "ktap", None), getattr(args, "junit", None),
                   getattr(args, "allure", None), kernel_names)

    def check(self) -> None:
        """Refuse an output path that could not be written, before anything boots (exit 2)."""
        for path, what in ((self.json, "--json"), (self.ktap, "--ktap"), (self.junit, "--junit")):
            if path:
                check_file(path, what)
        if self.allure:
            check_dir(self.allure, "--allure")


def suite_name(run: dict) -> str:
    """`mtty (kernel 7.3.4+deb13-amd64)`: a profile's suite on one kernel of a matrix."""
    return f"{run['profile']} (kernel {run.get('kernel') or 'unknown'})"


def _summary_stem(runs: list) -> str:
    """The JSON summary's name: one boot's directory name, or for several (a matrix, the mdev and
    PCI boots of one kernel) the first one's `lab-<date>-<time>`, which names no single kernel."""
    imported = [r for r in runs if r.run_ids]
    first = imported[0].run_dir.name
    return first if len(imported) == 1 else "-".join(first.split("-")[:3])


def lab_summary(runs: list, reports: Path, store_arg: str | None,
                json_path: str | None = None, outputs: Outputs | None = None) -> list[ProfileSummary]:
    """Summaries of the runs the boots imported (LabRun.run_ids), HTML per boot, one JSON file;
    prints the table and writes the `outputs`. Boots that imported nothing (a guest that never
    started) are left out."""
    outputs = outputs or Outputs(json=json_path)
    location = store_location(store_arg, reports / STORE_NAME)
    if not any(r.run_ids for r in runs):
        return []
    json_file = Path(outputs.json).absolute() if outputs.json else \
        reports.absolute() / "lab" / f"{_summary_stem(runs)}-summary.json"
    try:
        store = open_store(location, readonly=True)
    except StoreError as exc:
        print(f"vfio-conform lab: no summary: {exc}", file=sys.stderr)
        return []
    profiles: list[ProfileSummary] = []
    rows: list[dict] = []
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
            these = [r for r in (store.run(i) for i in run.run_ids) if r is not None]
            rows += these
            profiles += from_store(store, these, paths)
        written = _ci_files(store, location, rows, outputs)
    finally:
        store.close()
    run_json.write(profiles, json_file)
    sys.stdout.write("\n" + end_table.render(profiles))
    for path in written:
        sys.stdout.write(f"vfio-conform lab: wrote {path}\n")
    sys.stdout.flush()
    return profiles


def _ci_files(store, location: str, rows: list[dict], outputs: Outputs) -> list[str]:
    """JUnit, KTAP and Allure over every run of the command, through `export`'s writers (the
    ones `run` and `export` use): each suite is one run of a profile, naming its kernel."""
    out: dict[str, Path | None] = {
        "junit": Path(outputs.junit) if outputs.junit else None,
        "ktap": Path(outputs.ktap) if outputs.ktap else None,
        "allure": Path(outputs.allure) if outputs.allure else None}
    if not rows or not any(out.values()):
        return []
    from ..report.export import export
    try:
        return export(store, location, rows, out, suite_name if outputs.kernel_names else None)
    except OutputError as exc:
        print(f"vfio-conform lab: {exc}", file=sys.stderr)
        return []


def _junit(run, reports: Path) -> str | None:
    """The host copy of the guest's JUnit file (the guest's run dir, copied as runs/lab-<name>)."""
    guest_runs = run.run_dir / "reports" / "runs"
    for src in sorted(guest_runs.glob("*")) if guest_runs.exists() else []:
        path = reports.absolute() / "runs" / f"lab-{src.name}" / "junit.xml"
        if path.exists():
            return str(path)
    return None
