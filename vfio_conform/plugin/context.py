"""Per-session state of the plugin: selected profiles, devices, kernel, result store and run ids."""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import time
import uuid
from pathlib import Path

import pytest

from .. import __version__
from ..base.build import harness_build
from ..base.constants import STORE_NAME, reports_dir
from ..targets.select import Target, run_host, select_targets  # noqa: F401  (Target: the context's values)
from ..profile.schema import Profile
from ..results import RunMeta, open_store as open_result_store, store_location
from ..results.identity import profile_hash
from ..results.redact import public_command
from ..results.liveness import boot_id

CONTEXT_KEY = pytest.StashKey["VcContext"]()


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
