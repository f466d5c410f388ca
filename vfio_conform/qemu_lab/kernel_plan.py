"""What the lab runs on one kernel: which mdev profiles that kernel's own mtty.c can serve, and how.

mtty.c changes across releases. A kernel whose sample has no migration (6.1: mtty gained it in
6.7) loads the stock module only: the stock profile runs as a copy with
`migration: {protocol: none}` (the region suites run; the migration suites are not-supported, the
device has no migration), and each flag-set variant's profile gets one not-supported result
naming the reason instead of a boot.
"""
from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import __version__
from ..profile import load_profile
from ..profile.schema import Profile
from ..results import Outcome, RunMeta, TestRecord
from ..results.identity import profile_hash
from .config import KernelSpec
from .modbuild import migration_missing
from .packages import KernelTree, prepare_kernel

#: Test id of the one result a profile gets when its kernel cannot provide its device.
NOT_BUILT_TEST = "lab-kernel-device"


@dataclass
class KernelPlan:
    """The profiles to boot (host copies) and those recorded not-supported, with the reason."""

    run: list[Profile] = field(default_factory=list)
    not_supported: list[tuple[Profile, str]] = field(default_factory=list)


def plan(profiles: list[Profile], kernel: KernelSpec, mtty_source: Path | None,
         derived_dir: Path) -> KernelPlan:
    """Split `profiles` for `kernel`; a derived profile is written to `derived_dir` (the guest sees
    a profile's directory at its host path: LabConfig.extra_shares)."""
    out = KernelPlan()
    reason = migration_missing(mtty_source.read_text(), kernel.release) if mtty_source else ""
    for profile in profiles:
        if not reason or profile.lab is None or profile.lab.mode != "mdev":
            out.run.append(profile)
        elif profile.lab.module != "mtty":
            out.not_supported.append((profile, reason))
        else:
            out.run.append(derive_without_migration(profile, reason, derived_dir))
    return out


def derive_without_migration(profile: Profile, reason: str, directory: Path) -> Profile:
    """A copy of `profile` whose device has no migration (protocol none) and so no DMA dirty
    logging, the reason in its description; its waivers and hazards are dropped (they are
    about migration)."""
    doc = yaml.safe_load(Path(profile.path).read_text())
    doc["migration"] = {"protocol": "none"}
    if isinstance(doc.get("features"), dict) and "dma_logging" in doc["features"]:
        doc["features"]["dma_logging"] = False     # dirty logging came with migration (log_ops)
    doc["description"] = f"{doc.get('description', profile.name)} [{reason}]"
    for key in ("known_issues", "hazards"):
        doc.pop(key, None)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(profile.path).name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_profile(path)


def record_not_supported(store, profile: Profile, kernel: KernelSpec, reason: str, session: str) -> int:
    """One finished run of `profile` on `kernel` holding one not-supported result with `reason`."""
    run_id = store.begin_run(RunMeta(
        profile=profile.name, backend=profile.backend, devices="", driver=profile.lab.module,
        kernel=kernel.kver, harness_version=__version__, host=socket.gethostname(), session=session,
        argv=f"vfio-conform lab run --kernel {kernel.release}", started=time.time(),
        profile_hash=profile_hash(profile.path)))
    store.record(run_id, TestRecord(nodeid=NOT_BUILT_TEST, test_id=f"{NOT_BUILT_TEST}[{profile.name}]",
                                    outcome=Outcome.NOT_SUPPORTED, duration=0.0,
                                    message=f"not-supported: {reason}", profile=profile.name))
    store.end_run(run_id, "finished")
    return run_id


def kernel_key(tree: KernelTree) -> tuple[str, str]:
    """(Debian package version, sha256 prefix of the kernel config) of an unpacked kernel."""
    stamp = tree.root / "kernel.ready"
    version = tree.spec.version or (stamp.read_text().strip() if stamp.exists() else "")
    config = tree.config
    return version, hashlib.sha256(config.read_bytes()).hexdigest()[:16] if config.exists() else ""


def key_runs(store, run_ids: list[int], tree: KernelTree) -> None:
    """Store the kernel's package version and config hash on each of `run_ids`."""
    package, config = kernel_key(tree)
    for run_id in run_ids:
        store.set_kernel(run_id, package, config)


def prepare_for_kernel(group: list[Profile], kernel: KernelSpec, cache_dir: Path, reports: Path,
                       store, session: str) -> tuple[list[Profile], list[int]]:
    """The mdev profiles `kernel`'s own mtty can serve (derived copies under
    reports/lab/kernel-profiles/<kver> where its mtty has no migration), and the ids of the runs
    stored not-supported, with the reason, for the others (keyed by the kernel)."""
    tree = prepare_kernel(kernel, cache_dir)
    planned = plan(group, kernel, tree.mtty_source, reports / "lab" / "kernel-profiles" / kernel.kver)
    ids = []
    for profile, reason in planned.not_supported:
        print(f"vfio-conform lab: {profile.name}: not-supported on {kernel.kver}: {reason}", flush=True)
        ids.append(record_not_supported(store, profile, kernel, reason, session))
    key_runs(store, ids, tree)
    return planned.run, ids
