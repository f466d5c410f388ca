"""`vfio-conform report` and `vfio-conform diff` subcommands (registered by vfio_conform.cli.app)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..base.constants import DEFAULT_STORE, STORE_NAME, reports_dir
from ..results import ENV_VAR, StoreError, open_store, store_exists, store_location
from ..base.outfile import check_file, write_text
from ..report.files import exit_code, write_report
from .parser import OneLineParser
from ..report.trend import print_trend  # noqa: F401  (re-exported for `results --profile`)

#: Shown in --help: files go into ./reports unless --out/--html says where.
DEFAULT_OUT = "./reports"


def out_dir(store_value: str | None = None) -> Path:
    """Where `report` and `diff` write by default: `reports/` of the current directory. A reader
    never writes beside the store it reads unless told to (the store may be on read-only media,
    or another user's), and never into the package's folder."""
    return reports_dir()


def add_parsers(subparsers) -> None:
    """Register `report` and `diff` on the main parser's subparsers."""
    store_help = f"results store: SQLite path or postgresql:// URL (default: ${ENV_VAR} or {DEFAULT_STORE})"
    rep = subparsers.add_parser(
        "report", help="static HTML conformance report of stored run(s)",
        description="RUN: a run id, 'latest' (the newest session, all its profiles) or a session id.")
    rep.add_argument("runs", nargs="*", default=["latest"], metavar="RUN")
    rep.add_argument("--store", default=None, help=store_help)
    rep.add_argument("--profile", default=None, help="only this profile's runs")
    rep.add_argument("--host", default=None,
                     help="only this host's runs; 'latest' is the newest session of this host "
                          "(a fleet's shared store: each host publishes its own run)")
    rep.add_argument("--kernel", action="append", default=[], metavar="K",
                     help="instead of RUN: each profile's newest run on kernel K (repeat for several; "
                          "uname -r or Debian version, or a prefix such as 6.12): with two or more, "
                          "the page opens with the kernel x profile verdict grid")
    rep.add_argument("--out", default=None, metavar="FILE",
                     help=f"file to write (default: {DEFAULT_OUT}/report-<run>.<format suffix>)")
    rep.add_argument("--format", default="html", metavar="NAME",
                     help="report format: html or one a plugin registers (vfio_conform.reports)")
    rep.set_defaults(func=cmd_report)

    dif = subparsers.add_parser(
        "diff", help="compare two runs per profile; exit 1 on a regression (a new failure)",
        description="OLD/NEW: run id, 'latest', session id; OLD may be 'prev' (per profile, the run "
                    "of the same host before NEW). Exit 0: no regression; 1: a new failure, a NEW "
                    "run that did not finish, tests of OLD missing from NEW or without a verdict in "
                    "NEW (infra-error); 2: usage error, also runs of two profiles without --cross-profile.")
    dif.add_argument("old", metavar="OLD", nargs="?", default=None)
    dif.add_argument("new", metavar="NEW", nargs="?", default="latest")
    dif.add_argument("--store", default=None, help=store_help)
    dif.add_argument("--old-store", default=None, help="OLD comes from this store (default: --store)")
    dif.add_argument("--profile", default=None, help="only this profile")
    dif.add_argument("--html", default=None, metavar="FILE",
                     help=f"also write the HTML diff here (default: {DEFAULT_OUT}/diff-<old>-<new>.html)")
    dif.add_argument("--no-html", action="store_true", help="text only")
    dif.add_argument("--infra-is-regression", action="store_true",
                     help="new infrastructure errors also make the exit code 1")
    dif.add_argument("--allow-missing", action="store_true",
                     help="tests (or profiles) of OLD absent from NEW are not an error (a deliberate subset)")
    dif.add_argument("--allow-no-verdict", action="store_true",
                     help="tests OLD judged that have no verdict in NEW (infra-error, skipped: e.g. a dead "
                          "device) are not an error")
    dif.add_argument("--cross-profile", action="store_true",
                     help="compare a run with a run of another profile (default: refused, exit 2)")
    dif.add_argument("--host", default=None,
                     help="'latest' means the newest session of this host (default: any host)")
    dif.add_argument("--any-host", action="store_true",
                     help="'prev' may be a run of another host (default: the NEW run's host)")
    dif.add_argument("--kernel", nargs=2, default=None, metavar=("A", "B"),
                     help="compare each profile's newest run on kernel A with its newest on kernel B "
                          "(uname -r or Debian version, or a prefix such as 6.12; no OLD/NEW)")
    dif.set_defaults(func=cmd_diff)

    from ..report.export import add_parser as add_export_parser
    add_export_parser(subparsers, store_help)


def _open(value: str | None):
    """Open a store read-only (a reader never changes it; read-only media work)."""
    loc = store_location(value, reports_dir() / STORE_NAME)
    if not store_exists(loc):
        raise FileNotFoundError(f"no results store at {loc} (run 'vfio-conform run' first)")
    try:
        return open_store(loc, readonly=True)
    except StoreError as exc:
        raise FileNotFoundError(str(exc)) from None


def cmd_report(args, extra=None) -> int:
    from ..report.formats import get as get_format
    from ..report.runs import RunNotFound, resolve
    try:
        fmt = get_format(args.format)
    except ValueError as exc:
        print(f"vfio-conform report: {exc}", file=sys.stderr)
        return 2
    try:
        store = _open(args.store)
    except FileNotFoundError as exc:
        print(f"vfio-conform report: {exc}", file=sys.stderr)
        return 2
    shown: list[int] = []
    try:
        if args.kernel:
            from ..report.kernels import newest_per_profile
            runs = [r for kernel in args.kernel for r in newest_per_profile(store, kernel, args.profile)
                    if args.host is None or r.get("host") == args.host]
        else:
            runs = [r for spec in args.runs for r in resolve(store, spec, args.profile, args.host)
                    if args.host is None or r.get("host") == args.host]
        if not runs:
            raise RunNotFound(f"no runs match {' '.join(args.runs)}"
                              + (f" on host {args.host}" if args.host else ""))
        runs = list({r["id"]: r for r in runs}.values())
        label = f"run-{runs[0]['id']}" if len(runs) == 1 else f"runs-{runs[0]['id']}-{runs[-1]['id']}"
        out = Path(args.out) if args.out else out_dir(args.store) / f"report-{label}{fmt.suffix}"
        t0 = time.perf_counter()
        code = exit_code("report", lambda: (check_file(out, "report", create_parents=not args.out),
                                            shown.append(write_report(store, runs, out, fmt.name, "report"))))
    except (RunNotFound, StoreError) as exc:
        print(f"vfio-conform report: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if code:
        return code
    print(f"report: {out} ({shown[0]} results, {len(runs)} run(s), {time.perf_counter() - t0:.2f}s)")
    return 0


def cmd_diff(args, extra=None) -> int:
    from ..report.diff import diff_runs
    from ..report.diff_render import render_html, render_text
    from ..report.runs import RunNotFound, load, previous, resolve
    try:
        new_store = _open(args.store)
        old_store = _open(args.old_store) if args.old_store else new_store
    except FileNotFoundError as exc:
        print(f"vfio-conform diff: {exc}", file=sys.stderr)
        return 2
    try:
        baselines: set[int] = set()
        if args.kernel:             # same profiles, newest run on each kernel (report/kernels.py)
            from ..report.kernels import kernel_pair
            if args.old is not None or args.old_store:
                raise RunNotFound("--kernel A B compares runs of one store: no OLD/NEW, no --old-store")
            old_runs, new_runs = kernel_pair(new_store, *args.kernel, profile=args.profile)
        elif args.old is None:
            raise RunNotFound("give OLD (a run, a session or 'prev'), or --kernel A B")
        else:
            new_runs = resolve(new_store, args.new, args.profile, args.host)
            if args.old == "prev":
                pairs = [(previous(old_store, r, not args.any_host), r) for r in new_runs]
                old_runs = [p for p, _ in pairs if p is not None]
                baselines = {int(r["id"]) for p, r in pairs if p is None}
            else:
                old_runs = resolve(old_store, args.old, args.profile)
        if not new_runs or not (old_runs or baselines):
            raise RunNotFound(f"nothing to compare ({args.old} -> {args.new})")
        _same_profiles(old_runs, new_runs, args.cross_profile)
        diffs = diff_runs(load(old_store, old_runs), load(new_store, new_runs))
        for d in diffs:
            d.baseline = d.old is None and d.new is not None and int(d.new["id"]) in baselines
    except (RunNotFound, StoreError) as exc:
        print(f"vfio-conform diff: {exc}", file=sys.stderr)
        return 2
    finally:
        new_store.close()
        if old_store is not new_store:
            old_store.close()
    bad = any(d.problems(args.allow_missing, args.allow_no_verdict)
              or (args.infra_is_regression and d.new_infra_errors) for d in diffs)
    out = None
    if not args.no_html:      # checked and written before the verdict is printed: one verdict only
        name = (f"diff-{'-'.join(str(r['id']) for r in old_runs)}-"
                f"{'-'.join(str(r['id']) for r in new_runs)}")
        out = Path(args.html) if args.html else out_dir(args.store) / f"{name}.html"
        html = Path(out)
        code = exit_code("diff", lambda: (
            check_file(html, "diff HTML", create_parents=not args.html),
            write_text(html, render_html(diffs, allow_missing=args.allow_missing,
                                         allow_no_verdict=args.allow_no_verdict), "diff HTML")))
        if code:
            return code
    try:
        sys.stdout.write(render_text(diffs, args.allow_missing, args.allow_no_verdict))
        if out is not None:
            print(f"diff: {out}")
        sys.stdout.flush()
    except BrokenPipeError:         # `diff | head`: the verdict still decides the exit code
        _quiet_stdout()
    return 1 if bad else 0


def _same_profiles(old_runs: list[dict], new_runs: list[dict], cross_profile: bool) -> None:
    """A single run on each side is paired whatever its profile; of two different profiles only
    with --cross-profile (a renamed or copied profile), else RunNotFound (one line, exit 2)."""
    if cross_profile or len(old_runs) != 1 or len(new_runs) != 1:
        return
    old, new = old_runs[0], new_runs[0]
    if old["profile"] != new["profile"]:
        from ..report.runs import RunNotFound
        raise RunNotFound(f"run #{old['id']} is of profile {old['profile']}, run #{new['id']} of "
                          f"{new['profile']}: pass --cross-profile to compare runs of different profiles")


def _quiet_stdout() -> None:
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (python -m vfio_conform.cli.report ...) until the main CLI registers us."""
    p = OneLineParser(prog="vfio-conform")
    sub = p.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    tr = sub.add_parser("trend", help="pass/fail counts over a profile's runs")
    tr.add_argument("--profile", required=True)
    tr.add_argument("--store", default=None)
    tr.add_argument("--limit", type=int, default=20)
    tr.set_defaults(func=lambda a, e=None: print_trend(_open(a.store), a.profile, a.limit))
    args = p.parse_args(argv)
    return args.func(args, [])


if __name__ == "__main__":
    sys.exit(main())
