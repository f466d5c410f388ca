"""`vfio-conform`: run suites per profile, list/validate profiles, find devices, show results."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from .. import __version__
from ..base.constants import (ALLURE_DIR_ENV, CHECKOUT, DEFAULT_PROFILES, STORE_ENV,
                        STORE_NAME, SUITES_DIR, SUITES_INI, SUITES_ROOT, reports_dir)
from ..base.errors import ConfigError
from .parser import OneLineParser

ROOT = CHECKOUT


def main(argv: list[str] | None = None) -> int:
    parser = _parser(_command(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("run", "lab", "fleet"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from ..results import StoreError
    try:
        return args.func(args, extra)
    except (ConfigError, StoreError) as exc:
        print(f"vfio-conform: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:         # `vfio-conform results | head`: the reader has all it wants
        quiet_stdout()
        return 0


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe stays silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


#: Commands defined here: parsing them needs none of the tools' modules (bench, report, lab...).
CORE_COMMANDS = ("run", "profiles", "devices", "results")


def _command(argv: list[str]) -> str | None:
    """The command `argv` names, when no help is asked for before it (else None: every command)."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return None
        if not arg.startswith("-"):
            return arg
    return None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; for a core `command` without the tools' commands (their modules stay unloaded)."""
    p = OneLineParser(prog="vfio-conform", description=__doc__)
    p.add_argument("--version", action="version", version=f"vfio-conform {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance suites against a profile's device(s)",
                         description="Extra arguments after -- go to pytest (e.g. -- -k arc -x).")
    run.add_argument("--profile", action="append", default=[], metavar="NAME|PATH",
                     help=f"profile(s) to run (default: {', '.join(DEFAULT_PROFILES)})")
    run.add_argument("--device", action="append", default=[], metavar="ID",
                     help="device id (repeat for source and destination); default: the profile's")
    run.add_argument("--inventory", default=None, metavar="FILE",
                     help="run every device of this host inventory with its profile (leased per worker)")
    run.add_argument("-n", "--workers", default=None, metavar="N",
                     help="pytest-xdist workers (N or 'auto'); each profile stays on one worker "
                          "(with --inventory: each device or pair; 'auto' = one worker each)")
    run.add_argument("--reports", default=str(reports_dir()), metavar="DIR",
                     help="where results.sqlite, and per-run JUnit and Allure output go "
                          "(default: reports/ of the current directory)")
    run.add_argument("--store", default=None, metavar="PATH|URL",
                     help="result store: SQLite path or postgresql:// URL (default "
                          "$VFIO_CONFORM_STORE, else REPORTS/results.sqlite)")
    run.add_argument("--no-store", action="store_true", help="do not record results in a store")
    run.add_argument("--ktap", default=None, metavar="FILE", help="also write KTAP version 1 here")
    run.add_argument("--no-allure", action="store_true",
                     help="write no Allure results (they are written by default: REPORTS/runs/.../allure-results)")
    run.add_argument("--junit-properties", action="store_true",
                     help="give each JUnit testcase its record's fields as <properties> (outside the "
                          "Jenkins xunit schema the default file follows)")
    run.add_argument("--kernel-release", default=None, help="override uname -r for hazard gates")
    run.add_argument("--progress-file", default=None, help=argparse.SUPPRESS)
    run.add_argument("--progress-every", type=float, default=None, metavar="SECONDS",
                     help="a progress line (profile, tests done/total, elapsed) every SECONDS "
                          "(default 30; 0: none)")
    run.add_argument("--json", default=None, metavar="FILE",
                     help="write the machine-readable run summary here (default: summary.json "
                          "beside the run's JUnit file; schema: docs/json-summary.md)")
    run.add_argument("--no-summary", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--store-mirror", default=None, metavar="PATH",
                     help="copy the SQLite store here when the run starts and ends, and journal each "
                          "result as it is stored (a store on local storage of a machine that may die)")
    run.add_argument("--store-journal", default=None, metavar="PATH",
                     help="with --store-mirror: the journal's path (default: the mirror's + .journal)")
    run.add_argument("--status-file", default=None, help=argparse.SUPPRESS)  # default: progress file + .json
    run.add_argument("-q", "--quiet", action="store_true", help="less pytest output")
    run.set_defaults(func=cmd_run)

    prof = sub.add_parser("profiles", help="list and validate profiles (non-zero exit if any is invalid)")
    prof.add_argument("paths", nargs="*", help="profile files to check (default: all in profiles/)")
    prof.set_defaults(func=cmd_profiles)

    dev = sub.add_parser("devices", help="VFIO devices on this host and the profile each matches")
    dev.add_argument("--sysfs", default="/sys", help=argparse.SUPPRESS)
    dev.add_argument("--inventory", default=None, metavar="FILE",
                     help="check an inventory against this host: missing, wrong driver, leased, in use")
    dev.set_defaults(func=cmd_devices)

    res = sub.add_parser("results", help="recorded runs and their summaries")
    res.add_argument("--store", default=None,
                     help="SQLite path or postgresql:// URL (default $VFIO_CONFORM_STORE or "
                          "reports/results.sqlite)")
    res.add_argument("--run", type=int, default=None, help="show one run's test results")
    res.add_argument("--profile", default=None, help="only runs of this profile")
    res.add_argument("--host", default=None, help="only runs of this host (as stored: --host of `fleet run`)")
    res.add_argument("--limit", type=int, default=20)
    res.add_argument("--failed", action="store_true", help="with --run: only non-passing rows")
    res.add_argument("--json", action="store_true",
                     help="the runs' summary as JSON (schema: docs/json-summary.md)")
    res.set_defaults(func=cmd_results)

    if command in CORE_COMMANDS:
        return p
    bench = sub.add_parser("bench", help="harness costs as ratios against raw loops (transitions, "
                                         "streams, scaling, full suite)")
    from .bench import add_arguments as add_bench_arguments
    add_bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    from .report import add_parsers as add_report_parsers
    add_report_parsers(sub)
    from .profile import add_parser as add_profile_parser
    add_profile_parser(sub)

    from .fleet import add_parser as add_fleet_parser
    add_fleet_parser(sub)

    try:
        from .lab import add_parser as add_lab_parser
    except ImportError:
        add_lab_parser = None
    if add_lab_parser is not None:
        add_lab_parser(sub)
    return p


def pytest_args(args, extra: list[str], profiles: list[str]) -> list[str]:
    """The pytest command line `run` uses (also what the lab runs inside its guest)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = Path(profiles[0]).stem if len(profiles) == 1 else "multi"
    run_dir = Path(args.reports) / "runs" / f"{stamp}-{label}-{os.getpid()}"
    rest = [a for a in extra if a != "--"]
    # Paths or node ids after -- replace the suite root (a file subset); the run is then a subset.
    out = [*([] if _names_tests(rest) else [str(SUITES_DIR)]), "--rootdir", str(SUITES_ROOT),
           "-c", str(SUITES_INI),
           "-p", "no:cacheprovider", "-p", "no:allure_pytest",
           # plugins the suites never use, loaded (and importing their packages) on every start: the
           # random-walk and mutation tests call hypothesis themselves, inside the test
           "-p", "no:hypothesispytest", "-p", "no:benchmark",
           "-W", "ignore::pytest.PytestAssertRewriteWarning",
           "--vc-junit", str(run_dir / "junit.xml")]
    if not getattr(args, "no_allure", False):
        out += ["--vc-allure", os.environ.get(ALLURE_DIR_ENV) or str(run_dir / "allure-results")]
    for name in profiles:
        out += ["--vc-profile", name]
    for dev in args.device:
        out += ["--vc-device", dev]
    if getattr(args, "inventory", None):
        out += ["--vc-inventory", args.inventory]
    store = store_arg(args)
    out += ["--vc-no-store"] if store is None else ["--vc-store", store]
    if args.kernel_release:
        out += ["--vc-kernel-release", args.kernel_release]
    if getattr(args, "ktap", None):
        out += ["--vc-ktap", args.ktap]
    if getattr(args, "junit_properties", False):
        out.append("--vc-junit-properties")
    if args.progress_file:
        out += ["--vc-progress-file", args.progress_file]
    if args.store_mirror:
        out += ["--vc-store-mirror", args.store_mirror]
    if args.store_journal:
        out += ["--vc-store-journal", args.store_journal]
    if args.workers:
        out += ["-n", str(args.workers), "--dist", "loadgroup"]
    out.append("-q" if args.quiet else "-v" if len(profiles) == 1 and not args.workers else "-q")
    out += ["--vc-command", shlex.join(user_command(args, extra, profiles))]
    return out + rest


#: pytest options whose value is the next word (never a path of tests to collect).
_VALUE_OPTIONS = {"-k", "-m", "-p", "-c", "-o", "-W", "-n", "--deselect", "--ignore", "--ignore-glob",
                  "--rootdir", "--maxfail", "--dist", "--confcutdir", "--basetemp", "--tb", "-r",
                  "--durations", "--max-worker-restart", "--junitxml", "--import-mode"}


def _names_tests(words: list[str]) -> bool:
    """Whether pytest arguments name tests to collect: an existing file or directory, or a node id."""
    for i, word in enumerate(words):
        if word.startswith("-") or (i and words[i - 1] in _VALUE_OPTIONS):
            continue
        if Path(word.split("::", 1)[0]).exists():
            return True
    return False


def user_command(args, extra: list[str], profiles: list[str]) -> list[str]:
    """The `vfio-conform run` command as the user gave it (the run records it, made public)."""
    out = ["vfio-conform", "run", *(w for p in profiles for w in ("--profile", p)),
           *(w for d in args.device for w in ("--device", d))]
    for flag, value in (("-n", args.workers), ("--store", args.store),
                        ("--kernel-release", args.kernel_release)):
        out += [flag, str(value)] if value else []
    out += ["--no-store"] if args.no_store else []
    out += ["-q"] if args.quiet else []
    rest = [a for a in extra if a != "--"]
    return out + (["--", *rest] if rest else [])


def store_arg(args) -> str | None:
    """The result store a `run` writes: --store, else $VFIO_CONFORM_STORE, else REPORTS/results.sqlite
    (None with --no-store)."""
    if args.no_store:
        return None
    return args.store or os.environ.get(STORE_ENV) or str(Path(args.reports) / STORE_NAME)


class _ExitProbe:
    """pytest plugin handed to pytest.main: keeps the config, where the plugin leaves its exit code."""

    config = None

    def pytest_configure(self, config) -> None:
        self.config = config


def cmd_run(args, extra) -> int:
    """Exit 0 conformant, 1 spec violation, 2 usage/configuration error, 3 infra error or incomplete."""
    import pytest

    from ..base.exitcodes import from_pytest
    from ..targets.select import select_targets
    from ..plugin.lifecycle import EXIT_KEY
    from ..results import open_store
    inventory = None
    if args.inventory:
        from ..hosts.inventory import load_inventory
        inventory = load_inventory(args.inventory)
    profiles = args.profile or (inventory.profile_names() if inventory else list(DEFAULT_PROFILES))
    select_targets(profiles, args.device, inventory,   # checked before pytest starts
                   kernel_release=args.kernel_release or os.uname().release)
    argv = pytest_args(args, extra, profiles)
    check_run_outputs(args, argv)  # an output path that cannot be written: usage error, nothing runs
    check_pytest_plugins(argv)     # a `-p` plugin that is not there: the same, whatever pytest's version
    store = store_arg(args)
    if store is not None:          # a store that cannot be written is a usage error: nothing runs
        open_store(store).close()
    print(f"vfio-conform: profiles {', '.join(profiles)}; results -> {Path(args.reports).absolute()}",
          flush=True)
    location, last = _store_mark(args)
    probe = _ExitProbe()
    from ..plugin.heap import reports_after_session
    from ..base.interrupts import Terminated, sigterm_raises, terminated
    from ..report.run_end import finish_run
    phase = "the pytest session"
    try:
        # also while the reports are written, after pytest returned: SIGTERM raises, and the
        # collected session stays out of the garbage collector's scans
        with sigterm_raises(), reports_after_session():
            code = pytest.main(argv, plugins=[probe, _progress(args)])
            phase = "the run's reports"
            handled = terminated()     # a SIGTERM during the tests: the plugin ended the runs
            # --no-summary: the caller (the lab) prints its own table and writes its own HTML report
            finish_run(probe.config, store, args.json, show=not args.no_summary, html=not args.no_summary)
            if terminated() and not handled:    # deferred while a row was written
                raise Terminated("SIGTERM")
            if location is not None:
                phase = "the per-consumer lines"
                _print_consumer_lines(location, last)
    except Exception as exc:       # noqa: BLE001  (anything outside a test: one line, exit 3)
        return run_crashed(probe.config, store, args, argv, phase, exc)
    except KeyboardInterrupt as exc:
        return run_crashed(probe.config, store, args, argv, phase, exc)
    chosen = probe.config.stash.get(EXIT_KEY, None) if probe.config is not None else None
    return int(chosen) if chosen is not None else int(from_pytest(code))


def check_pytest_plugins(argv: list[str]) -> None:
    """Every plugin `-p NAME` asks pytest to load is an importable module or an installed pytest
    plugin (ConfigError, one line, before anything runs: pytest says it in its own words, which
    differ between its versions)."""
    import importlib.util
    from importlib.metadata import entry_points
    names = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-p"]
    names += [arg[2:] for arg in argv if arg.startswith("-p") and len(arg) > 2 and not arg.startswith("-p=")]
    wanted = [name for name in names if not name.startswith("no:")]
    if not wanted:
        return
    installed = {point.name for point in entry_points(group="pytest11")}
    for name in wanted:
        if name in installed:
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):       # a dotted name whose package is missing
            found = False
        if not found:
            raise ConfigError(f"pytest plugin {name!r} (-p {name}) is neither an importable module nor "
                              f"an installed pytest plugin: nothing was run")


def check_run_outputs(args, argv: list[str]) -> None:
    """Every output path of `run` checked before the first test (ConfigError: one line, exit 2):
    the reports directory, the run's JUnit/Allure directory, --json and --ktap."""
    from ..base.outfile import check_dir, check_file
    check_dir(args.reports, "--reports")
    for flag, what in (("--vc-junit", "the run's report directory"), ("--vc-allure", "Allure results directory")):
        if flag in argv:
            value = Path(argv[argv.index(flag) + 1])
            check_dir(value.parent if flag == "--vc-junit" else value, what)
    if args.json:
        check_file(args.json, "--json")
    if args.ktap:
        check_file(args.ktap, "--ktap")
    if args.store_mirror and not args.no_store:
        from ..plugin.store_mirror import check_mirror
        check_mirror(store_arg(args), args.store_mirror)


def run_crashed(config, store: str | None, args, argv: list[str], phase: str, exc: BaseException) -> int:
    """Something outside the tests raised: end every run this command began `incomplete`
    (terminated / interrupted / crashed), save the traceback, print one line. Exit 3, or 2 when
    pytest could not even start (nothing ran: a bad `-p` plugin, a bad pytest option)."""
    import traceback

    from ..base.outfile import OutputError
    from ..plugin.context import CONTEXT_KEY
    from ..base.interrupts import Terminated, terminated
    from ..results import Reason, RunStatus, open_store
    from ..results.redact import mask_password
    ctx = config.stash.get(CONTEXT_KEY, None) if config is not None else None
    run_ids = list(ctx.run_ids.values()) if ctx is not None else []
    reason = (Reason.TERMINATED if isinstance(exc, Terminated) or terminated()
              else Reason.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else Reason.CRASHED)
    marked = ""
    if run_ids and store is not None:
        try:
            writer = open_store(store)
            try:
                for run_id in run_ids:
                    writer.end_run(run_id, RunStatus.INCOMPLETE.value, reason.value)
            finally:
                writer.close()
            marked = (f"run{'s' if len(run_ids) > 1 else ''} {', '.join(f'#{i}' for i in run_ids)} "
                      f"ended incomplete ({reason.value})")
        except Exception as err:     # noqa: BLE001  the store may be what failed
            marked = f"the runs could not be marked ({err})"
    text = "".join(traceback.format_exception(exc))
    saved = _save_traceback(text, argv, config is not None)
    if reason is Reason.TERMINATED:
        what = f"terminated by SIGTERM during {phase}"
    elif reason is Reason.INTERRUPTED:
        what = f"interrupted during {phase}"
    elif isinstance(exc, OutputError):
        what = str(exc)
    else:
        tb = traceback.extract_tb(exc.__traceback__)
        hooks = [f for f in tb if f.name.startswith("pytest_")]      # name the hook that raised
        frame = hooks[-1] if hooks else tb[-1] if tb else None
        where = f" at {Path(frame.filename).name}:{frame.lineno} in {frame.name}" if frame else ""
        what = (f"crashed in {phase}" if config is not None else "pytest could not start (nothing was run)")
        what += f": {type(exc).__name__}: {_first_line(str(exc))}{where}"
    parts = [what, marked, f"traceback: {saved}" if saved else "traceback not saved"]
    if run_ids and store is not None:
        parts.append(f"'vfio-conform export {run_ids[0]}' rebuilds its outputs")
    sys.stdout.flush()
    print("vfio-conform: error: " + mask_password("; ".join(p for p in parts if p)), file=sys.stderr)
    return 3 if config is not None else 2


def _first_line(text: str, limit: int = 300) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit] + "..."


def _save_traceback(text: str, argv: list[str], started: bool = True) -> str | None:
    """Write the traceback beside the run's JUnit file (if the run `started`), else into the
    temporary directory."""
    from ..base.outfile import save_traceback
    beside = Path(argv[argv.index("--vc-junit") + 1]).parent if started and "--vc-junit" in argv else None
    return save_traceback(text, beside)


def _progress(args):
    from ..plugin.progress import DEFAULT_EVERY_S, Progress, status_path
    every = DEFAULT_EVERY_S if args.progress_every is None else max(0.0, args.progress_every)
    status = args.status_file or (status_path(args.progress_file) if args.progress_file else None)
    return Progress(every, status)


def _store_mark(args):
    """(store location, id of its last run) before a run, for the per-consumer lines after it.

    The store is closed again at once: a reader left open during the run would keep SQLite from
    checkpointing the run's rows into the main file when the run's writer closes."""
    if args.no_store:
        return None, 0
    from ..results import open_store, store_location
    location = store_location(args.store or os.environ.get(STORE_ENV), Path(args.reports) / STORE_NAME)
    try:
        store = open_store(location, readonly=True)
        try:
            runs = store.runs(limit=1)
        finally:
            store.close()
    except Exception:          # the per-consumer lines are optional; pytest reports store errors itself
        return location, 0
    return location, (runs[0]["id"] if runs else 0)


def _print_consumer_lines(location: str, after_run_id: int) -> None:
    from ..report.consumers import print_run_lines
    from ..results import open_store
    try:
        store = open_store(location, readonly=True)
    except Exception:          # a lost store was already reported by the run
        return
    try:
        print_run_lines(store, after_run_id)
    finally:
        store.close()


def cmd_profiles(args, extra) -> int:
    from ..profile import FoundProfile, ProfileSource, find_all, load_profile, search_path
    from ..targets.select import check_profile
    if args.paths:
        found, bad = [], []
        for path in args.paths:
            try:
                found.append(FoundProfile(load_profile(path), ProfileSource("file", Path(path).parent)))
            except ConfigError as exc:
                bad.append(exc)
    else:
        print("profile search path (first match wins): "
              + "; ".join(f"{s.kind} {s.directory}" for s in search_path()))
        found, bad = find_all()
    for f in list(found):
        try:
            check_profile(f.profile)
        except ConfigError as exc:
            found.remove(f)
            bad.append(exc)
    for f in found:
        p = f.profile
        devices = ", ".join(p.devices) or "(needs --device)"
        print(f"{p.name:20} {p.backend:9} flags={flag_names(p.flags):24} devices={devices:24} "
              f"{f.source.kind}: {p.path}")
        for source, path in f.shadows:
            print(f"{'':20} shadows the {source.kind} profile {p.name} ({path})")
    for exc in bad:
        print(f"INVALID {exc}", file=sys.stderr)
    return 1 if bad else 0


def flag_names(flags) -> str:
    """Migration flags as `STOP_COPY|P2P` (`none` for a device without v2 migration)."""
    from ..uapi.enums import MigFlag
    return "|".join(f.name for f in MigFlag if f in MigFlag(flags)) or "none"


def cmd_devices(args, extra) -> int:
    if args.inventory:
        from ..plugin.inventory import print_host_check
        return print_host_check(args.inventory, args.sysfs)
    from ..backends.registry import host_backends
    from ..profile import load_all
    from ..profile.matching import best_match
    found = [(backend, loc) for backend in host_backends() for loc in backend.list_host_devices(args.sysfs)]
    if not found:
        print("no VFIO devices on this host.\n"
              "  PCI: bind one to vfio-pci: echo vfio-pci > /sys/bus/pci/devices/BDF/driver_override; "
              "echo BDF > /sys/bus/pci/drivers_probe\n"
              "  mdev: echo $(uuidgen) > /sys/class/mdev_bus/*/mdev_supported_types/TYPE/create\n"
              "  no hardware at all: 'vfio-conform lab' runs the suites on a real kernel in QEMU")
        return 0
    profiles, _ = load_all()
    for backend, loc in found:
        match = best_match([p for p in profiles if p.backend == backend.name], loc, os.uname().release)
        ids = f"{loc.vendor_id:04x}:{loc.device_id:04x}" if loc.vendor_id is not None else "-"
        print(f"{loc.id:38} {loc.kind:5} driver={loc.driver or '-':16} ids={ids:10} "
              f"type={loc.mdev_type or '-':10} group={loc.group_path or '-':18} "
              f"profile={match.name if match else '(none)'}")
    return 0


def cmd_results(args, extra) -> int:
    from ..results import open_store, store_exists, store_location
    loc = store_location(args.store, reports_dir() / STORE_NAME)
    if not store_exists(loc):
        if args.run is not None:
            print(f"vfio-conform: error: no run #{args.run}: {loc} does not exist", file=sys.stderr)
            return 2
        if args.json:               # still a document a script can parse: no profiles
            from ..report.run_json import dumps
            sys.stdout.write(dumps([]))
            return 0
        print(f"no results yet ({loc} does not exist); run 'vfio-conform run' first")
        return 0
    store = open_store(loc, readonly=True)
    try:
        if args.json:
            return _print_results_json(store, args)
        return _print_results(store, args)
    finally:
        store.close()


def _print_results(store, args) -> int:
    from ..results import describe_reason
    if args.profile and args.run is None and args.host is None:
        from .report import print_trend
        return print_trend(store, args.profile, args.limit)
    if args.run is not None:
        run = store.run(args.run)
        if run is None:
            print(f"vfio-conform: error: no run #{args.run} in {store.url}", file=sys.stderr)
            return 2
        why = f" ({run['reason']}: {describe_reason(run['reason'])})" if run.get("reason") else ""
        print(f"run #{run['id']} {run['profile']}: {run['status']}{why}")
        for row in store.results(args.run):
            if args.failed and row["outcome"] == "pass":
                continue
            print(f"{row['outcome']:14} {row['test_id']}  {row['message'][:160] if row['outcome'] != 'pass' else ''}")
        return 0
    for run in store.runs(limit=args.limit, profile=args.profile, host=args.host):
        summary = store.summary(run["id"])
        counts = " ".join(f"{k}={v}" for k, v in sorted(summary.items()))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started"]))
        status = run["status"] + (f"({run['reason']})" if run.get("reason") else "")
        print(f"#{run['id']:<5} {started} {run.get('host') or '?':12} {run['profile']:18} {status:28} "
              f"kernel={run['kernel']} devices={run['devices']} {counts}")
    return 0


def _print_results_json(store, args) -> int:
    from ..report.run_json import dumps
    from ..report.run_end import stored_summaries
    if args.run is not None:
        run = store.run(args.run)
        if run is None:
            print(f"vfio-conform: error: no run #{args.run} in {store.url}", file=sys.stderr)
            return 2
        runs = [run]
    else:
        runs = list(reversed(store.runs(limit=args.limit, profile=args.profile, host=args.host)))
    sys.stdout.write(dumps(stored_summaries(store, runs)))
    return 0


def cmd_bench(args, extra) -> int:
    from .bench import run_bench
    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
