"""`vfio-conform export RUN`: the CI files of stored runs, rebuilt from the store alone.

A night whose run was killed, crashed or terminated before it wrote its JUnit, KTAP, Allure, HTML
and JSON files still has every recorded result in the store; `export` writes those files from it,
with the same writers `run` uses (outputs/junit.py, outputs/ktap.py, outputs/allure_results.py,
report/html.py, report/run_json.py) and through the same output writer (vfio_conform/base/outfile.py).
For a finished run the files equal the run's own apart from generation times, Allure's random
uuids and what the store does not keep: the captured stdout and full failure traces of the Allure
results (the stored message stands in for the trace) and messages longer than 4000 characters.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from ..base.outfile import check_dir, check_file
from ..results import Outcome, TestRecord
from . import run_json
from .files import exit_code
from .run_verdicts import ReportPaths, from_store

#: Files of one export in its directory (the names `run` uses beside its JUnit file).
JUNIT, HTML, JSON, ALLURE = "junit.xml", "report.html", "summary.json", "allure-results"


def add_parser(subparsers, store_help: str) -> None:
    exp = subparsers.add_parser(
        "export", help="rebuild JUnit, KTAP, Allure, HTML and the JSON summary of stored run(s)",
        description="RUN: a run id, 'latest' (the newest session, all its profiles) or a session id. "
                    "Works for runs that were killed or crashed before writing their files.")
    exp.add_argument("runs", nargs="*", default=["latest"], metavar="RUN")
    exp.add_argument("--store", default=None, help=store_help)
    exp.add_argument("--profile", default=None, help="only this profile's runs")
    exp.add_argument("--reports", default=None, metavar="DIR",
                     help="write junit.xml, report.html, summary.json and allure-results/ into "
                          "DIR/export-<run> (default: reports/ of the current directory)")
    exp.add_argument("--json", default=None, metavar="FILE", help="the JSON summary here instead")
    exp.add_argument("--ktap", default=None, metavar="FILE", help="also write KTAP version 1 here")
    exp.add_argument("--junit", default=None, metavar="FILE", help="the JUnit XML here instead")
    exp.add_argument("--allure", default=None, metavar="DIR", help="the Allure results here instead")
    exp.add_argument("--html", default=None, metavar="FILE", help="the HTML report here instead")
    exp.set_defaults(func=cmd_export)


@dataclasses.dataclass(frozen=True)
class StoredWaiver:
    """A stored waiver, as the Allure writer reads a profile's KnownIssue."""

    index: int
    test: str
    rule: str
    link: str
    reason: str

    def matches(self, test_id: str) -> bool:
        return fnmatch.fnmatchcase(test_id, self.test.replace("[", "[[]"))


def records(store, run_id: int) -> list[TestRecord]:
    """Every stored record of a run, in the order they were recorded."""
    out = []
    for row in store.results(run_id):
        data = dict(row)
        data["rules"] = (row.get("rules") or "").split()
        data["should"] = (row.get("should") or "").split()
        data["devices"] = [d for d in (row.get("devices") or "").split(",") if d]
        data["message"] = row.get("message") or ""
        data["duration"] = float(row.get("duration") or 0.0)
        data["finished"] = float(row.get("recorded") or 0.0)
        for name in ("rule", "link", "waiver_reason", "hazard", "test_key", "arc_expect", "arc_from",
                     "arc_to", "profile"):
            data[name] = row.get(name) or ""
        data["profile"] = data["profile"]
        out.append(TestRecord.from_dict(data))
    return out


def _flags(run: dict) -> int:
    """The migration flags of the run's profile, when the profile found by its name is the very
    file the run used (same hash); 0 otherwise (the store does not keep them)."""
    from ..base.errors import ConfigError
    from ..profile import find_profile
    from ..results.identity import profile_hash
    try:
        prof = find_profile(run["profile"])
    except (ConfigError, OSError):
        return 0
    same = run.get("profile_hash") and prof.path and profile_hash(prof.path) == run["profile_hash"]
    return int(prof.flags) if same else 0


def _selection(run: dict) -> str:
    """The run's 'complete 231/231' or 'subset 24/231' as the run's own JUnit and KTAP headers say it
    (plugin/selection.py ProfileSelection.label), from the stored counts ('' when not stored)."""
    selected, total = run.get("selected_tests"), run.get("suite_tests")
    if selected is None:
        return ""
    word = "complete" if total is not None and selected >= total else "subset"
    return f"{word} {selected}/{total if total is not None else '?'}"


def export(store, location: str, runs: list[dict], out: dict[str, Path | None],
           name: Callable[[dict], str] | None = None) -> list[str]:
    """Write the files `out` names (keys junit, ktap, allure, html, json; None: not written) for
    stored `runs` of the store at `location`; returns the paths written. `name(run)`: the suite's
    name in JUnit, KTAP and Allure (default: the run's profile; `lab matrix` adds the kernel, one
    profile running on several kernels)."""
    from ..outputs import allure_results, junit, ktap
    from ..plugin.ci_outputs import decisive
    from ..results.waivers import load_waivers
    from .files import write_report
    from .run_end import with_root_causes
    suites = []
    for run in runs:
        recs = decisive(records(store, run["id"]))
        for rec in recs:
            if not rec.profile:
                rec.profile = run["profile"]
        suites.append(junit.SuiteInput(name(run) if name else run["profile"], recs, store.environment(run["id"]), int(run["id"]),
                                       run.get("session") or "", run.get("host") or "", _selection(run)))
    written = []
    if out.get("junit"):
        written.append(str(junit.write(out["junit"], suites)))
    if out.get("ktap"):
        written.append(str(ktap.write(out["ktap"], suites)))
    if out.get("allure"):
        first = runs[0]
        profiles = [allure_results.ProfileRun(
            s.profile, s.records, backend=run.get("backend") or "",
            devices=tuple(d for d in (run.get("devices") or "").split(",") if d),
            driver=run.get("driver") or "", flags=_flags(run), environment=s.environment,
            run_id=s.run_id, waivers=tuple(StoredWaiver(w.index, w.test, w.rule, w.link, w.reason)
                                           for w in load_waivers(store, run["id"])))
            for s, run in zip(suites, runs)]
        # one writer call per kernel: each result names its own kernel (runs of several kernels:
        # `lab matrix`); the run files (environment.properties, ...) then name them all
        by_kernel: dict[str, list[int]] = {}
        for index, run in enumerate(runs):
            by_kernel.setdefault(run.get("kernel") or "", []).append(index)
        session, host = first.get("session") or "", first.get("host") or ""
        for kernel, indexes in by_kernel.items():
            extras = {r.nodeid: allure_results.TestExtras(trace=r.message)
                      for i in indexes for r in suites[i].records
                      if r.outcome in (Outcome.FAIL, Outcome.INFRA_ERROR) and r.message}
            allure_results.write(out["allure"], allure_results.AllureRun(
                session, kernel, host, [profiles[i] for i in indexes]), extras)
        if len(by_kernel) > 1:
            allure_results.write_run_files(out["allure"], allure_results.AllureRun(
                session, ", ".join(by_kernel), host, profiles))
        written.append(str(out["allure"]))
    html = None
    if out.get("html"):
        write_report(store, runs, out["html"])
        html = str(out["html"])
        written.append(html)
    if out.get("json"):
        paths = ReportPaths(html=html, junit=str(out["junit"]) if out.get("junit") else None,
                            allure=str(out["allure"]) if out.get("allure") else None,
                            json=str(Path(out["json"]).absolute()))
        stored = SimpleNamespace(records=[r for s in suites for r in s.records])   # as the recorder holds them
        profiles = with_root_causes(from_store(store, runs, paths), stored)
        written.append(str(run_json.write(profiles, out["json"])))
    return written


def _check_paths(folder: Path, out: dict[str, Path | None]) -> None:
    """Refuse (OutputPathError) an export path that could not be written."""
    check_dir(folder, "export directory")
    for name, what in (("junit", "--junit"), ("ktap", "--ktap"), ("html", "--html"), ("json", "--json")):
        path = out[name]
        if path is not None:
            check_file(path, what, create_parents=path.parent == folder)
    check_dir(out["allure"], "--allure")


def cmd_export(args, extra=None) -> int:
    from ..base.constants import reports_dir
    from ..results import StoreError
    from ..base.constants import STORE_NAME
    from ..results import open_store, store_exists, store_location
    from .runs import RunNotFound, resolve
    location = store_location(args.store, reports_dir() / STORE_NAME)
    if not store_exists(location):
        print(f"vfio-conform export: no results store at {location} (run 'vfio-conform run' first)",
              file=sys.stderr)
        return 2
    try:
        store = open_store(location, readonly=True)     # a reader: the store is not changed
    except StoreError as exc:
        print(f"vfio-conform export: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            runs = [r for spec in args.runs for r in resolve(store, spec, args.profile)]
            runs = list({r["id"]: r for r in runs}.values())
            if not runs:
                raise RunNotFound(f"no runs match {' '.join(args.runs)}")
        except (RunNotFound, StoreError) as exc:
            print(f"vfio-conform export: {exc}", file=sys.stderr)
            return 2
        label = f"run-{runs[0]['id']}" if len(runs) == 1 else f"runs-{runs[0]['id']}-{runs[-1]['id']}"
        base = Path(args.reports) if args.reports else reports_dir()
        folder = base / f"export-{label}"
        out = {"junit": Path(args.junit) if args.junit else folder / JUNIT,
               "ktap": Path(args.ktap) if args.ktap else None,
               "allure": Path(args.allure) if args.allure else folder / ALLURE,
               "html": Path(args.html) if args.html else folder / HTML,
               "json": Path(args.json) if args.json else folder / JSON}
        written: list[str] = []
        try:          # every path checked before the first file is written
            code = exit_code("export", lambda: (_check_paths(folder, out),
                                                written.extend(export(store, location, runs, out))))
        except StoreError as exc:
            print(f"vfio-conform export: {exc}", file=sys.stderr)
            return 2
        if code:
            return code
    finally:
        store.close()
    ids = ", ".join(f"#{r['id']} {r['profile']} ({r['status']}{', ' + r['reason'] if r.get('reason') else ''})"
                    for r in runs)
    print(f"export: {ids}")
    for path in written:
        print(f"  {path}")
    return 0
