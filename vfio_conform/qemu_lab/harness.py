"""Run the conformance suites inside the lab guest on the profiles' devices; bring results home.

One boot per lab mode (every mtty variant loaded at once; or the vfio-pci devices), one pytest
session in the guest over all its profiles, results imported into the host's store.
"""
from __future__ import annotations

import json
import shutil
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..base.constants import ALLURE_DIR_ENV, STORE_NAME
from ..base.errors import ConfigError
from ..base.exitcodes import Exit
from ..profile import find_profile, load_all
from ..profile.schema import Profile
from ..results import Outcome, ResultStore, TestRecord, import_runs, open_store, store_location
from ..results.journal import replay
from ..results.keys import strip_profile
from .channels import JOURNAL, PROGRESS
from .config import KernelSpec, LabConfig
from .crash import GuestCrash, Progress, read_crash, read_progress
from .errors import LabError
from .kernel_plan import key_runs, prepare_for_kernel
from .progress_watch import ProgressWatch
from .session import GUEST_RESULTS, LabSession
from .warm import warm_host_caches

#: The rule a driver that crashes the kernel during a test breaks (model/spec.py).
KERNEL_RULE = "kernel.no-warnings"
#: Host-side cap for one boot running the suites (TCG is slow; CI has 90 minutes in all).
BOOT_TIMEOUT_S = 45 * 60
#: The guest writes its reports (result store, JUnit, Allure) here, in its own tmpfs, and sends them
#: home at the end as one tar file on the share (many small files cost 9p round trips each). The
#: store is mirrored to the share (plugin/store_mirror.py: a copy when the run starts and ends, and a
#: journal line per result), so a guest that dies mid-run loses no result. A SQLite store on the share
#: itself cost several 9p round trips per row and, with its -shm file, needs shared mmap, which only
#: the share's write-back cache mode offers (qemu_lab/guest_init.sh: the share is uncached).
GUEST_LOCAL_REPORTS = "/tmp/vfio-conform-reports"
#: Allure results directory inside the guest.
GUEST_ALLURE = f"{GUEST_LOCAL_REPORTS}/allure-results"
#: The guest's reports (all but the store), packed at the end of the command, beside `reports/`.
REPORTS_TAR = "reports.tar"
#: The guest processes' result stores (store_name()).
STORE_GLOB = f"{Path(STORE_NAME).stem}*{Path(STORE_NAME).suffix}"
#: With several worker processes, each one's output goes here until all have ended.
GUEST_WORKER_OUTPUT = "/tmp/vfio-conform-workers"
#: A guest whose progress file stands still longer than the slowest test's timeout plus this is
#: hung below Python (the per-test SIGALRM could not fire): QEMU is killed, an infra-error recorded.
STALL_MARGIN_S = 120
#: New boots after guests killed by kernel crashes, each for the tests that had not run yet.
RECOVERY_BOOTS = 3


@dataclass
class LabRun:
    """Outcome of one boot: guest pytest exit code (or None after an infra failure) and paths."""

    mode: str
    profiles: list[str]
    exit_code: int | None
    run_dir: Path
    error: str = ""
    run_ids: list[int] = field(default_factory=list)     # the runs imported into the host store
    crash: GuestCrash | None = None      # the kernel crash that killed the guest, from its console
    progress: Progress = field(default_factory=lambda: Progress({}, []))
    judged: set[str] = field(default_factory=set)        # node ids with a verdict in the store
    blamed: str | None = None           # the driver under test that the crash's trace names


def lab_profiles(names: list[str] | None = None) -> list[Profile]:
    """The named profiles (each must have a `lab:` section), or every profile that has one."""
    if names:
        profiles = [find_profile(n) for n in names]
        for p in profiles:
            if p.lab is None:
                raise ConfigError(f"profile {p.name!r} has no 'lab' section", p.path,
                                  hint="the lab can only provide devices a profile describes under lab:")
        return profiles
    good, bad = load_all()
    if bad:
        raise bad[0]
    return [p for p in good if p.lab is not None]


def guest_argv(session: LabSession, profiles: list[Profile], workers: str | None,
               extra: list[str]) -> list[str]:
    """The guest command: `python3 -m vfio_conform run` over `profiles` (each on its own two guest
    devices), as `workers` processes with the profiles dealt out among them (qemu_lab/guest_run.py),
    then the reports packed for the host."""
    count = process_count(workers, len(profiles))
    commands = []
    for index in range(count):
        status = status_name(index, count)
        # a store per process: runs sharing one SQLite file wait for each other's writes
        name = store_name(index, count)
        argv = ["python3", "-m", "vfio_conform", "run", "--reports", GUEST_LOCAL_REPORTS,
                "--store", f"{GUEST_LOCAL_REPORTS}/{name}",
                "--store-mirror", f"{GUEST_RESULTS}/reports/{name}",
                "--store-journal", JOURNAL.guest_path(), "--progress-file", PROGRESS.guest_path(),
                "--status-file", f"{GUEST_RESULTS}/{status}", "--progress-every", "0",
                "--no-summary"]             # the host prints the table and writes the HTML report
        for profile in profiles[index::count]:
            argv += ["--profile", profile.path]
            for dev in _devices(session, profile):
                argv += ["--device", f"{profile.name}={dev}"]
        commands.append(argv + (["--", *extra] if extra else []))
    # 512 KiB records: a write to the uncached share is a round trip (the share's msize is 512 KiB)
    pack = ["tar", "-b", "1024", "-C", GUEST_LOCAL_REPORTS, "-cf", f"{GUEST_RESULTS}/{REPORTS_TAR}",
            "--exclude", f"./{STORE_GLOB}*", "."]
    spec = {"commands": commands, "outputs": GUEST_WORKER_OUTPUT, "pack": pack}
    return ["python3", "-m", "vfio_conform.qemu_lab.guest_run", json.dumps(spec)]


def process_count(workers: str | None, profiles: int) -> int:
    """How many guest processes `workers` means for `profiles` profiles (never more than profiles)."""
    return max(1, min(int(workers or 1), profiles))


def store_name(index: int, count: int) -> str:
    """The result store of the guest's `index`-th of `count` processes."""
    return STORE_NAME if count == 1 else f"{Path(STORE_NAME).stem}-{index}{Path(STORE_NAME).suffix}"


def status_name(index: int, count: int) -> str:
    """The status file (in the run dir) of the guest's `index`-th of `count` processes."""
    return "progress.json" if count == 1 else f"progress-{index}.json"


def status_files(run_dir: Path, workers: str | None, profiles: int) -> list[Path]:
    """The status files the guest's processes write (see guest_argv)."""
    count = process_count(workers, profiles)
    return [run_dir / status_name(i, count) for i in range(count)]


def guest_workers(workers: str | None, profiles: int, cpus: int) -> str | None:
    """The guest's worker processes: None for one; "auto" is one per profile, at most one per vCPU."""
    if workers == "auto":
        count = min(profiles, cpus)
        return str(count) if count > 1 else None
    return workers


def _devices(session: LabSession, profile: Profile) -> list[str]:
    if profile.lab.mode == "mdev":
        return session.module_devices(profile.lab.module)
    roles = [d.qemu_id for d in session.config.pci_devices]
    planned = session.planned_devices()
    missing = [r for r in profile.lab.devices if r not in roles]
    if missing:
        raise ConfigError(f"profile {profile.name}: lab devices {missing} not in the lab "
                          f"(known: {', '.join(roles)})", profile.path, field="lab.devices")
    return [planned[roles.index(r)] for r in profile.lab.devices]


def run_lab(names: list[str] | None, reports: Path, store: str | None = None,
            workers: str | None = None, extra: list[str] | None = None,
            timeout: float = BOOT_TIMEOUT_S, env: dict[str, str] | None = None,
            kernel: KernelSpec | None = None) -> list[LabRun]:
    """Boot once per mode, run the suites in the guest, import results into the host store.
    `kernel`: which Debian kernel (qemu_lab/kernels.py resolves one); None for the pinned default."""
    profiles = lab_profiles(names)
    if not profiles:
        raise ConfigError("no profile with a 'lab' section selected")
    warm_host_caches()          # what the guest would otherwise compile under TCG
    runs = []
    for mode in ("mdev", "pci"):
        group = [p for p in profiles if p.lab.mode == mode]
        if not group:
            continue
        if kernel is not None and mode == "mdev":     # what this kernel's own mtty.c can serve
            group, refused = _for_kernel(group, kernel, reports, store)
            runs += refused
            if not group:
                continue
        modules = tuple(dict.fromkeys(p.lab.module for p in group)) if mode == "mdev" else ("mtty",)
        session = LabSession(LabConfig(mode=mode, modules=modules, kernel=kernel or KernelSpec(),
                                       extra_env=tuple({ALLURE_DIR_ENV: GUEST_ALLURE,
                                                        **(env or {})}.items()),
                                       # the guest sees the profiles' files wherever they are
                                       extra_shares=tuple(dict.fromkeys(Path(p.path).resolve().parent
                                                                        for p in group))))
        session.prepare()
        boots = _boots(session, group, reports, store, workers, extra or [], timeout)
        ids, tree = [i for b in boots for i in b.run_ids], session.prepare().tree
        _with_store(reports, store, lambda db, ids=ids, tree=tree: key_runs(db, ids, tree))
        runs += boots
    return runs


def _with_store(reports: Path, store_arg: str | None, action) -> object:
    store = open_store(store_location(store_arg, reports / STORE_NAME))
    try:
        return action(store)
    finally:
        store.close()


def _for_kernel(group: list[Profile], kernel: KernelSpec, reports: Path,
                store_arg: str | None) -> tuple[list[Profile], list[LabRun]]:
    """The mdev profiles `kernel` can serve; one LabRun holding those stored not-supported."""
    session = f"lab-{time.strftime('%Y%m%d-%H%M%S')}-{kernel.kver}"
    served, ids = _with_store(reports, store_arg, lambda db: prepare_for_kernel(
        group, kernel, LabConfig(kernel=kernel).kernel_cache, reports, db, session))
    names = {p.name for p in served}
    refused = [p.name for p in group if p.name not in names]
    return served, ([LabRun("mdev", refused, 0, reports / "lab" / f"{session}-not-supported",
                            run_ids=ids)] if ids else [])


def _boots(session: LabSession, group: list[Profile], reports: Path, store: str | None,
           workers: str | None, extra: list[str], timeout: float) -> list[LabRun]:
    """Boot for `group`; after a guest killed by a kernel crash in a driver under test (the test
    it ran failed), boot again (at most RECOVERY_BOOTS times) for the tests that had not run, the
    ones already judged deselected. Any other death ends the mode's boots (an outage)."""
    mode, runs = session.config.mode, []
    stamp = time.strftime('%Y%m%d-%H%M%S')
    done: set[str] = set()          # judged in an earlier boot, or the test the guest died in
    pending = group
    for boot in range(1 + RECOVERY_BOOTS):
        tag = mode if session.config.kernel == KernelSpec() else f"{session.config.kernel.kver}-{mode}"
        run_dir = reports / "lab" / (f"{stamp}-{tag}" + (f"-boot{boot + 1}" if boot else ""))
        count = guest_workers(workers, len(pending), session.config.cpus)
        deselect = [a for nodeid in sorted(done) for a in ("--deselect", nodeid)]
        argv = guest_argv(session, pending, count, [*extra, *deselect])
        print(f"vfio-conform lab: booting the {mode} guest for {', '.join(p.name for p in pending)} "
              f"(results: {run_dir})", flush=True)
        run = _boot(session, pending, argv, run_dir, timeout,
                    status_files(run_dir, count, len(pending)))
        runs.append(run)
        _bring_home(run, reports, store, pending)
        if run.blamed is None:
            break                   # finished, or an outage: no new boot would do better
        done |= run.judged
        never = [n for n, prof in run.progress.selected.items() if n not in done]
        if not never:
            break
        if boot == RECOVERY_BOOTS:
            _record_never_ran(reports, store, run, never)
            break
        names = {run.progress.selected[n] for n in never}
        pending = [p for p in group if p.name in names]
        print(f"vfio-conform lab: the guest died in {run.progress.last or 'no test'}; "
              f"{len(never)} test(s) had not run: a new boot runs them", file=sys.stderr, flush=True)
    return runs


def _boot(session: LabSession, group: list[Profile], argv: list[str], run_dir: Path,
          timeout: float, status: list[Path]) -> LabRun:
    names = [p.name for p in group]
    try:
        stall = max(p.timeouts.test for p in group) + STALL_MARGIN_S
        with ProgressWatch(session.config.mode, names, status):
            result = session.run(argv, timeout=timeout, results_dir=run_dir, stall_timeout=stall)
    except LabError as exc:
        print(f"vfio-conform lab: infrastructure error: {exc}", file=sys.stderr, flush=True)
        crash = None
        if exc.kind == "kernel-crash" and (run_dir / "console.log").exists():
            crash = read_crash((run_dir / "console.log").read_text(errors="replace"))
        return LabRun(session.config.mode, names, None, run_dir, str(exc), crash=crash,
                      progress=read_progress(run_dir / PROGRESS.host_file))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr[-4000:])
    if result.kernel_warnings:
        print(f"vfio-conform lab: kernel warnings in the guest ({len(result.kernel_warnings)}), "
              f"see {result.dmesg_path}", file=sys.stderr)
    return LabRun(session.config.mode, names, result.exit_code, run_dir)


def _bring_home(run: LabRun, reports: Path, store_arg: str | None, group: list[Profile] = ()) -> None:
    """Import the guest's runs into the host store and copy its JUnit/Allure output under reports/."""
    guest_reports = run.run_dir / "reports"
    _unpack(run.run_dir / REPORTS_TAR, guest_reports)
    store = open_store(store_location(store_arg, reports / STORE_NAME))
    journal = run.run_dir / JOURNAL.host_file
    new_ids: list[int] = []
    for guest_store in sorted(guest_reports.glob(STORE_GLOB)):     # one per guest process
        if journal.exists() and journal.stat().st_size:
            _replay(guest_store, journal)
        new_ids += import_runs(store, guest_store)
    run.run_ids = list(new_ids)
    if run.exit_code is None:
        _record_guest_death(store, new_ids, run, group)
        if run.blamed is not None:      # the driver's failure: a violation, not an outage
            run.exit_code = int(Exit.NONCONFORMANT)
    for src in sorted((guest_reports / "runs").glob("*")) if (guest_reports / "runs").exists() else []:
        shutil.copytree(src, reports / "runs" / f"lab-{src.name}", dirs_exist_ok=True)
    if (guest_reports / "allure-results").exists():
        shutil.copytree(guest_reports / "allure-results",
                        reports / "runs" / f"lab-{run.run_dir.name}" / "allure-results", dirs_exist_ok=True)
    store.close()


def _replay(guest_store: Path, journal: Path) -> None:
    """Complete the guest's store copy with its journal: the results of a guest that died mid-run
    (a guest that finished left a whole copy, and nothing is added)."""
    snapshot = ResultStore(guest_store)
    try:
        added = replay(snapshot, journal, source=guest_store.name)
    finally:
        snapshot.close()
    if added:
        print(f"vfio-conform lab: {added} result(s) recovered from the guest's journal",
              file=sys.stderr, flush=True)


def _unpack(tar: Path, into: Path) -> None:
    """Extract the guest's packed reports (regular files and directories only) into `into`."""
    if not tar.exists():
        return
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tar) as pack:
            pack.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:      # a guest that died while packing
        print(f"vfio-conform lab: the guest's reports could not be unpacked from {tar}: {exc}",
              file=sys.stderr, flush=True)


def _record_guest_death(store, run_ids: list[int], run: LabRun, group: list[Profile]) -> None:
    """A guest that died mid-run: keep every row; the test it died in gets its verdict, and every
    run it cut short ends `incomplete`/`crashed`.

    The verdict: a fail under kernel.no-warnings, with the excerpt, when the kernel crashed with the
    driver under test in the call trace (the test's profile's lab module); else an infra-error
    naming the test (an outage, a crash elsewhere in the kernel)."""
    last = run.progress.last or "(none started)"
    owner = run.progress.selected.get(last)
    profile = next((p for p in group if p.name == owner), None)
    blamed = run.blamed = _blamed_module(run.crash, profile)
    for run_id in run_ids or []:
        info = store.run(run_id)
        run.judged |= {r["nodeid"] for r in store.results(run_id)}
        if info.get("status") == "finished":
            continue
        name = info.get("profile") or ""
        if owner is None or name == owner:
            store.record(run_id, _death_record(last, name, run, blamed))
        store.end_run(run_id, "incomplete", "crashed")
    run.judged.add(last)


def _blamed_module(crash: GuestCrash | None, profile: Profile | None) -> str | None:
    """The module under test that the crash's call trace names, or None."""
    if crash is None or profile is None or profile.lab is None:
        return None
    candidates = [profile.lab.module, getattr(profile.match, "driver", None)]
    return next((m for m in candidates if m and crash.names(m)), None)


def _death_record(nodeid: str, profile: str, run: LabRun, blamed: str | None) -> TestRecord:
    test_id = nodeid.rpartition("::")[2] or nodeid
    if blamed is not None and run.crash is not None:
        return TestRecord(nodeid=nodeid, test_id=test_id, outcome=Outcome.FAIL, duration=0.0,
                          rule=KERNEL_RULE, rules=(KERNEL_RULE,), profile=profile,
                          test_key=strip_profile(test_id, profile),
                          message=f"the kernel crashed in {blamed} while this test drove the "
                                  f"device, and the guest died: {run.crash.headline}\n"
                                  f"{run.crash.excerpt}")
    return TestRecord(nodeid=nodeid, test_id=f"lab-guest-died:{nodeid}", outcome=Outcome.INFRA_ERROR,
                      duration=0.0, profile=profile,
                      message=f"guest died while running {nodeid}: {run.error}")


def _record_never_ran(reports: Path, store_arg: str | None, run: LabRun, never: list[str]) -> None:
    """Out of new boots: each test that never ran is an infra-error saying so, in its profile's run."""
    store = open_store(store_location(store_arg, reports / STORE_NAME))
    try:
        by_profile = {store.run(i).get("profile"): i for i in run.run_ids}
        for nodeid in never:
            name = run.progress.selected[nodeid]
            if name in by_profile:
                store.record(by_profile[name], TestRecord(
                    nodeid=nodeid, test_id=f"lab-never-ran:{nodeid}", outcome=Outcome.INFRA_ERROR,
                    duration=0.0, profile=name,
                    message=f"never ran: the guest died {1 + RECOVERY_BOOTS} times (last in "
                            f"{run.progress.last}) before this test started"))
    finally:
        store.close()
    print(f"vfio-conform lab: {len(never)} test(s) never ran (recorded as infra-errors)",
          file=sys.stderr, flush=True)

