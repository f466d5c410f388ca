"""`vfio-conform lab consumers`: QEMU 10 as the real migration client of the lab's devices.

One mdev guest boot with every selected mtty variant loaded; inside it, consumer_guest.py runs the
trixie chroot's QEMU (built once by debootstrap into the lab cache) to migrate a VM with the
profile's source mdev to a VM with its destination mdev. One pci guest boot asks QEMU to migrate a
VM with each vfio-pci device (no migration uAPI: QEMU's refusal is the not-supported reason). The
outcome per profile goes to the result store as its own run, profile `<name>@qemu` (so run-to-run
diffs compare consumer runs with consumer runs), beside the suites' run of `<name>`; a summary goes
to the console and `consumers.md`.
"""
from __future__ import annotations

import dataclasses
import json
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..base.constants import STORE_NAME
from ..profile.schema import Profile
from ..results import Outcome, RunMeta, TestRecord, open_store, store_location
from ..results.identity import profile_hash
from .config import KernelSpec, LabConfig
from .consumer_verdict import RULE_MIGRATION, Cause, ProfileVerdict, consumer_test_id, finding, judge, \
    judge_without_migration, kernel_config, not_migratable
from .errors import LabError
from .harness import lab_profiles
from .modbuild import migration_missing
from .packages import prepare_kernel
from .qemu_chroot import prepare_qemu_chroot
from .session import GUEST_RESULTS, LabSession

GUEST_SCRIPT = Path(__file__).with_name("consumer_guest.py")
#: Host-side limit of one boot: boot and setup, plus per profile up to two attempts whose nested-VM
#: steps are each limited in the guest (measured: boot ~15 s, an attempt 2-14 s under TCG in TCG).
BOOT_BASE_S = 300
PER_PROFILE_S = 300
STORE_SUFFIX = "@qemu"


@dataclass
class ConsumerRun:
    """What the lane did: verdicts per profile, where its files are, and its exit code."""

    verdicts: list[ProfileVerdict]
    run_dir: Path | None
    qemu: str
    exit_code: int


def _exit_code(verdicts: list[ProfileVerdict]) -> int:
    outcomes = {r.outcome for v in verdicts for r in v.records}
    if Outcome.INFRA_ERROR in outcomes:
        return 3
    return 1 if Outcome.FAIL in outcomes else 0


def guest_argv(chroot_root: Path, pairs: list[str]) -> list[str]:
    """The consumer_guest.py command line for `PROFILE=SRC,DST` (mdev) / `PROFILE=BDF` (vfio-pci) items."""
    return ["python3", str(GUEST_SCRIPT), "--root", str(chroot_root), "--out",
            f"{GUEST_RESULTS}/consumers.json", *pairs]


def _pairs(session: LabSession, profiles: list[Profile]) -> dict[str, list[str]]:
    """Devices per profile: the mdev source and destination, or the first vfio-pci device."""
    if session.config.mode == "mdev":
        return {p.name: session.module_devices(p.lab.module)[:2] for p in profiles}
    roles = [d.qemu_id for d in session.config.pci_devices]
    planned = session.planned_devices()
    return {p.name: [planned[roles.index(p.lab.devices[0])]] for p in profiles
            if p.lab.devices and p.lab.devices[0] in roles}


def verdicts_from(doc: dict[str, Any], profiles: list[Profile], config: dict[str, str] | None
                  ) -> list[ProfileVerdict]:
    """Judge every profile the guest document covers (infra-error for those it does not)."""
    by_name = {e["profile"]: e for e in doc.get("profiles", [])}
    qemu = doc.get("qemu") or "QEMU"
    out = []
    for p in profiles:
        entry = by_name.get(p.name)
        if entry is None:
            why = doc.get("setup_error") or "the guest did not reach this profile"
            out.append(_infra(p.name, why))
        elif p.protocol == "none":
            out.append(judge_without_migration(p.name, entry, qemu))
        else:
            out.append(judge(p.name, p.dma_logging, entry, config, qemu))
    return out


def _infra(profile: str, why: str) -> ProfileVerdict:
    tid = consumer_test_id("migrate", profile, "default")
    rec = TestRecord(tid, tid, Outcome.INFRA_ERROR, 0.0, f"QEMU consumer lane: {why}", RULE_MIGRATION.id)
    return ProfileVerdict(profile, (rec,), f"{profile}: QEMU migration not run: {why}", Cause.LAB)


@dataclass
class _Boot:
    """What one guest boot of the lane produced."""

    verdicts: list[ProfileVerdict]
    run_dir: Path
    qemu: str
    kernel: str
    devices: dict[str, list[str]]


def _boot(mode: str, profiles: list[Profile], reports: Path, timeout: float | None,
          kernel_spec: KernelSpec | None = None) -> _Boot:
    """Boot the `mode` guest once and let QEMU migrate (mdev) or try to migrate (vfio-pci) each device."""
    modules = tuple(dict.fromkeys(p.lab.module for p in profiles)) if mode == "mdev" else ("mtty",)
    session = LabSession(LabConfig(mode=mode, modules=modules, kernel=kernel_spec or KernelSpec()))
    prepared = session.prepare()
    chroot = prepare_qemu_chroot(session.config.cache_root)
    devices = _pairs(session, profiles)
    run_dir = reports / "lab" / f"{time.strftime('%Y%m%d-%H%M%S')}-consumers-{mode}"
    kernel = prepared.tree.spec.kver
    config = kernel_config(prepared.tree.config)
    print(f"vfio-conform lab: {chroot.version} in the {mode} guest: {', '.join(p.name for p in profiles)} "
          f"(results: {run_dir})", flush=True)
    limit = timeout or BOOT_BASE_S + PER_PROFILE_S * len(profiles)
    try:
        result = session.run(guest_argv(chroot.root, [f"{n}={','.join(d)}" for n, d in devices.items()]),
                             timeout=limit, results_dir=run_dir)
        sys.stdout.write(result.stdout)
        doc = json.loads((run_dir / "consumers.json").read_text())
    except (LabError, OSError, ValueError) as exc:
        print(f"vfio-conform lab: consumers: infrastructure error: {exc}", file=sys.stderr, flush=True)
        doc = _partial(run_dir / "consumers.json")      # the guest writes it after every profile
        doc["setup_error"] = f"lab infrastructure error: {exc}"
    verdicts = verdicts_from(doc, profiles, config)
    kernel = doc.get("kernel") or kernel
    return _Boot(verdicts, run_dir, chroot.version, kernel, devices)


def _partial(path: Path) -> dict[str, Any]:
    """What the guest recorded before it died, or an empty document."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"profiles": []}


def run_consumers(names: list[str] | None, reports: Path, store: str | None = None,
                  timeout: float | None = None, kernel_spec: KernelSpec | None = None) -> ConsumerRun:
    """Prepare the lab and the QEMU chroot, boot each needed guest once, record and summarise.
    `kernel_spec`: another Debian kernel (qemu_lab/kernels.py); None for the pinned default."""
    profiles = lab_profiles(names)
    groups = {"mdev": [p for p in profiles if p.lab.mode == "mdev" and p.protocol == "v2"],
              "pci": [p for p in profiles if p.lab.mode == "pci" and p.protocol == "none"]}
    chosen = groups["mdev"] + groups["pci"]
    verdicts = [not_migratable(p.name, f"migration protocol {p.protocol} in lab mode {p.lab.mode}: "
                               "the lane drives v2 mdev profiles and vfio-pci profiles without migration "
                               "(not run)") for p in profiles if p not in chosen]
    if kernel_spec is not None and groups["mdev"]:      # this kernel's own mtty may not migrate
        tree = prepare_kernel(kernel_spec, LabConfig(kernel=kernel_spec).kernel_cache)
        reason = migration_missing(tree.mtty_source.read_text(), kernel_spec.release)
        if reason:
            verdicts += [not_migratable(p.name, f"{reason} (not run)") for p in groups["mdev"]]
            groups["mdev"] = []
    on_kernel = (kernel_spec,) if kernel_spec is not None else ()
    boots = [_boot(mode, group, reports, timeout, *on_kernel) for mode, group in groups.items() if group]
    for boot in boots:
        verdicts += boot.verdicts
    devices = {k: v for boot in boots for k, v in boot.devices.items()}
    kernel = next((b.kernel for b in boots), "")
    qemu = next((b.qemu for b in boots), "")
    verdicts = _record(verdicts, profiles, reports, store, kernel, devices)
    run_dir = None
    if boots:
        run_dir = boots[0].run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "consumers.md").write_text(summary_text(verdicts, qemu, kernel))
    return ConsumerRun(verdicts, run_dir, qemu, _exit_code(verdicts))


def summary_text(verdicts: list[ProfileVerdict], qemu: str, kernel: str) -> str:
    """Markdown summary: one line per profile, then every record with its outcome."""
    lines = [f"# Real consumer: {qemu or 'QEMU'} on {kernel or 'the lab kernel'}", ""]
    lines += [f"- **{v.summary}**" if v.summary.startswith("FINDING") else f"- {v.summary}"
              for v in verdicts]
    lines += ["", "| test | outcome | message |", "|---|---|---|"]
    for v in verdicts:
        for r in v.records:
            msg = r.message.replace("|", "\\|")
            lines.append(f"| {r.test_id} | {r.outcome.value} | {msg} |")
    return "\n".join(lines) + "\n"


def _with_finding(store, verdict: ProfileVerdict) -> ProfileVerdict:
    """Compare with the newest suites run of the profile; a finding leads the summary and the message."""
    runs = store.runs(limit=1, profile=verdict.profile)
    suites = (int(runs[0]["id"]), store.summary(int(runs[0]["id"]))) if runs else None
    line = finding(verdict, suites)
    if line is None:
        return verdict
    first = dataclasses.replace(verdict.records[0], message=f"{line}. {verdict.records[0].message}")
    return dataclasses.replace(verdict, records=(first, *verdict.records[1:]),
                               summary=f"{line}: {verdict.summary}")


def _record(verdicts: list[ProfileVerdict], profiles: list[Profile], reports: Path, store_arg: str | None,
            kernel: str, devices: dict[str, list[str]]) -> list[ProfileVerdict]:
    """One run per profile, named `<profile>@qemu`, in the same session; returns the verdicts with
    the suites comparison added."""
    paths = {p.name: p for p in profiles}
    store = open_store(store_location(store_arg, reports / STORE_NAME))
    session = f"consumers-{time.time_ns():x}"
    out = []
    try:
        for v in verdicts:
            v = _with_finding(store, v)
            out.append(v)
            prof = paths[v.profile]
            run_id = store.begin_run(RunMeta(
                profile=v.profile + STORE_SUFFIX, backend=prof.backend,
                devices=",".join(devices.get(v.profile, [])),
                driver=prof.lab.module if prof.lab and prof.lab.mode == "mdev" else "vfio-pci",
                kernel=kernel, harness_version=__version__, host=socket.gethostname(), session=session,
                argv="vfio-conform lab consumers", started=time.time(), profile_hash=profile_hash(prof.path)))
            for rec in v.records:
                store.record(run_id, rec)
            store.end_run(run_id, "finished")
    finally:
        store.close()
    return out
