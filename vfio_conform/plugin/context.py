"""Per-session state of the plugin: selected profiles, devices, kernel, result store and run ids."""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import time
import uuid
from pathlib import Path

import pytest

from .. import __version__
from ..base.build import harness_build
from ..base.constants import HOST_ENV, STORE_NAME, reports_dir
from ..backends import registry
from ..base.errors import ConfigError
from ..profile import find_profile
from ..profile.schema import Profile
from ..results import RunMeta, open_store as open_result_store, store_location
from ..results.identity import profile_hash
from ..results.redact import public_command
from .waivers import check_waivers
from ..results.liveness import boot_id

CONTEXT_KEY = pytest.StashKey["VcContext"]()


@dataclasses.dataclass
class Target:
    """A profile and the device ids it runs against."""

    profile: Profile
    device_ids: tuple[str, ...]
    driver: str = ""


@dataclasses.dataclass
class VcContext:
    targets: dict[str, Target]
    kernel_release: str
    session: str
    store: object | None = None
    run_ids: dict[str, int] = dataclasses.field(default_factory=dict)
    progress_file: str | None = None
    #: InventorySession when devices come from an inventory (leased per worker), else None.
    inventory: object | None = None

    @property
    def profiles(self) -> list[Profile]:
        return [t.profile for t in self.targets.values()]

    @property
    def host(self) -> str:
        """The host the runs are stored under (every output names this one): $VFIO_CONFORM_HOST,
        which `fleet run` sets to its --host, else the machine's name."""
        return run_host()


def run_host() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def build_context(config) -> VcContext | None:
    """Load and validate every selected profile and device before any device is touched."""
    names = config.getoption("vc_profile")
    inventory = None
    if config.getoption("vc_inventory"):
        from ..hosts.inventory import load_inventory
        inventory = load_inventory(config.getoption("vc_inventory"))
        names = names or inventory.profile_names()
    if not names:
        return None
    release = config.getoption("vc_kernel_release") or os.uname().release
    targets = select_targets(names, config.getoption("vc_device"), inventory, kernel_release=release)
    ctx = VcContext(targets, release, uuid.uuid4().hex[:12],
                    progress_file=config.getoption("vc_progress_file"))
    if inventory is not None:
        from .inventory import InventorySession
        ctx.inventory = InventorySession(inventory, ctx.session)
    return ctx


def check_profile(profile: Profile) -> None:
    """What loading a profile cannot check alone: waivers against the suites, its backend section."""
    check_waivers(profile)
    registry.check_profile(profile)


def select_targets(names: list[str], device_values: list[str], inventory=None,
                   kernel_release: str | None = None) -> dict[str, Target]:
    """Profiles and their devices, every one checked (ConfigError); nothing is opened. With
    `kernel_release`, each profile is the one for that kernel (Profile.for_kernel)."""
    if inventory is not None:
        return _inventory_targets(names, device_values, inventory, kernel_release)
    plain, scoped = _split_devices(device_values)
    if plain and len(names) > 1:
        raise ConfigError("a plain --vc-device needs exactly one --vc-profile "
                          "(with several profiles, write PROFILE=ID)")
    targets: dict[str, Target] = {}
    for name in names:
        profile = find_profile(name)
        if kernel_release is not None:
            profile = profile.for_kernel(kernel_release)
        if profile.name in targets:
            raise ConfigError(f"profile {profile.name!r} selected twice")
        check_profile(profile)
        ids = plain or scoped.pop(profile.name, ()) or profile.devices
        if not ids:
            raise ConfigError(f"profile {profile.name!r} names no device", profile.path,
                              hint="pass --device ID (list candidates with 'vfio-conform devices')")
        targets[profile.name] = Target(profile, ids, registry.check_devices(profile, ids))
    if scoped:
        raise ConfigError(f"--vc-device names profile(s) not selected: {', '.join(sorted(scoped))}")
    return targets


def _inventory_targets(names, device_values, inventory, kernel_release=None) -> dict[str, Target]:
    """Each selected profile with every inventory device that runs it (leased per worker later)."""
    if device_values:
        raise ConfigError("--device and --inventory exclude each other: the inventory names the devices")
    targets: dict[str, Target] = {}
    for name in names:
        profile = inventory.profiles.get(name) or find_profile(name)
        if kernel_release is not None:
            profile = profile.for_kernel(kernel_release)
        devices = [d for d in inventory.devices if d.profile_name == profile.name]
        if not devices:
            raise ConfigError(f"profile {profile.name!r} runs on no device of the inventory", inventory.path)
        check_profile(profile)
        targets[profile.name] = Target(profile, tuple(d.device_id for d in devices),
                                       ",".join(sorted({d.driver or profile.backend for d in devices})))
    return targets


def _split_devices(values) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Plain device ids, and PROFILE=ID ones grouped by profile (order kept: source first)."""
    plain, scoped = [], {}
    for value in values:
        profile, sep, device = value.partition("=")
        if sep:
            scoped.setdefault(profile, ())
            scoped[profile] += (device,)
        else:
            plain.append(value)
    return tuple(plain), scoped


def _outputs(config) -> str:
    """The run's output files as JSON (the store keeps them apart from the public command line)."""
    paths = {"junit": config.getoption("vc_junit"), "ktap": config.getoption("vc_ktap"),
             "allure": config.getoption("vc_allure")}
    return json.dumps({k: str(Path(v).absolute()) for k, v in paths.items() if v})


def open_store(config, ctx: VcContext) -> None:
    """Open the store and begin one run per profile (controller process only)."""
    if config.getoption("vc_no_store"):
        return
    ctx.store = open_result_store(store_location(config.getoption("vc_store"),
                                                 reports_dir() / STORE_NAME))
    argv = public_command(config.getoption("vc_command")
                          or shlex.join(["pytest", *config.invocation_params.args]))
    for name, target in ctx.targets.items():
        ctx.run_ids[name] = ctx.store.begin_run(RunMeta(
            profile=name, backend=target.profile.backend, devices=",".join(target.device_ids),
            driver=target.driver, kernel=ctx.kernel_release, harness_version=__version__,
            host=ctx.host, session=ctx.session, argv=argv, started=time.time(),
            profile_hash=profile_hash(target.profile.path), pid=os.getpid(), boot_id=boot_id(),
            outputs=_outputs(config), harness_build=str(harness_build())))
