"""What `vfio-conform run` writes and prints once pytest is done: the HTML report and JSON summary
beside the run's JUnit file, and the summary table."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from . import end_table, run_json
from .run_verdicts import ProfileSummary, ReportPaths, from_plugin, from_store


def finish_run(config, store_location: str | None, json_path: str | None,
               show: bool = True, html: bool = True) -> list[ProfileSummary]:
    """Summaries of the pytest session `config` ran (empty when no run began, e.g. a usage error or
    --collect-only); writes report.html (with a store, unless `html` is False) and the JSON summary
    beside the session's JUnit file, prints the table (if `show`)."""
    from ..plugin.context import CONTEXT_KEY
    ctx = config.stash.get(CONTEXT_KEY, None) if config is not None else None
    lifecycle = config.pluginmanager.get_plugin("vfio-conform-lifecycle") if ctx is not None else None
    if lifecycle is None or not lifecycle.statuses:
        return []
    junit = Path(config.getoption("vc_junit"))
    run_dir = junit.parent
    allure = config.getoption("vc_allure")
    html = write_html(store_location, list(ctx.run_ids.values()), run_dir / "report.html") \
        if html and store_location and ctx.run_ids else None
    json_file = Path(json_path).absolute() if json_path else run_dir / "summary.json"
    paths = ReportPaths(html=html, junit=str(junit) if junit.exists() else None,
                        allure=allure if allure and Path(allure).exists() else None,
                        json=str(json_file))
    recorder = config.pluginmanager.get_plugin("vfio-conform-recorder")
    from ..plugin.perf import performance_of
    profiles = with_root_causes(from_plugin(ctx, lifecycle, paths, performance_of(config, ctx.targets)),
                                recorder)
    run_json.write(profiles, json_file)
    if show:
        sys.stdout.write("\n" + end_table.render(profiles))
        for name, (failing, causes) in root_cause_counts(recorder, [p.profile for p in profiles]).items():
            if causes:
                sys.stdout.write(f"{name}: {failing} failing test(s) from {causes} root cause(s)\n")
        sys.stdout.flush()
    return profiles


def root_cause_counts(recorder, names: list[str]) -> dict[str, tuple[int, int]]:
    """profile -> (failing tests, root causes), from the records the run stored (one per test)."""
    if recorder is None:
        return {}
    from ..plugin.ci_outputs import decisive
    from ..results import Outcome, rootcause
    out = {}
    for name in names:
        records = decisive([r for r in recorder.records if r.profile == name])
        out[name] = (sum(r.outcome is Outcome.FAIL for r in records), len(rootcause.count(records)))
    return out


def with_root_causes(profiles: list[ProfileSummary], recorder) -> list[ProfileSummary]:
    """Each profile's count of root causes (results/rootcause.py) from the records the run stored."""
    counts = root_cause_counts(recorder, [p.profile for p in profiles])
    return [dataclasses.replace(p, root_causes=counts[p.profile][1]) if p.profile in counts else p
            for p in profiles]


def write_html(location: str, run_ids: list[int], out: Path) -> str | None:
    """The HTML report of these stored runs at `out`; None if the store cannot be read."""
    from ..results import StoreError, open_store
    from .files import write_report
    try:
        store = open_store(location, readonly=True)
    except StoreError:
        return None
    try:
        runs = [r for r in (store.run(i) for i in run_ids) if r is not None]
        if not runs:
            return None
        write_report(store, runs, out)
    except StoreError:
        return None
    finally:
        store.close()
    return str(out)


def stored_summaries(store, runs: list[dict]) -> list[ProfileSummary]:
    """Summaries of stored runs (`results --json`)."""
    return from_store(store, runs)
