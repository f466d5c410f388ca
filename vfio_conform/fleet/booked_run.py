"""`fleet run`: book this host's places, run the booked units, give everything back, whatever happens.

SIGTERM (how GitLab cancels or times out a job) and SIGINT are handled in every phase:

* while booking (waiting for a held place): the wait ends, our reservations are cancelled, the
  places acquired so far released; exit 3;
* while the run goes: the signal is forwarded once to the child `vfio-conform run` (its own
  process group, so a terminal's Ctrl-C reaches it once), which ends its run `terminated` or
  `interrupted` and restores its devices; after at most `STOP_GRACE` s it is killed; then the
  places are released and the reservations cancelled; exit 3.

A device operation that hangs in the child (plugin/watchdog.py) writes a line to the recovery file
this module names in $VFIO_CONFORM_RECOVERY_FILE: the booked places are then tagged for recovery
(`needs_recovery`, with the hang in their comment; a later `fleet run` refuses them), the child is
stopped as above, and `fleet run` exits 3.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ..base.constants import HOST_ENV, RECOVERY_FILE_ENV
from ..base.errors import ConfigError, InfraError
from ..hosts.inventory import Inventory, load_inventory
from .booking import Booking, requests_for
from .labgrid import LabgridClient, kill_group

#: Seconds the child run gets after a forwarded signal to end its run and restore its devices.
STOP_GRACE = float(os.environ.get("VFIO_CONFORM_FLEET_STOP_GRACE", "120"))
#: Exit code of `fleet run` when it was stopped by a signal or a hang (an incomplete run).
EXIT_INFRA = 3


class Stopped(BaseException):
    """SIGTERM/SIGINT reached `fleet run` while it was booking (raised by the handler)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclasses.dataclass
class FleetOptions:
    coordinator: str
    inventory: str
    host: str
    run_args: list[str]
    profiles: list[str] | None = None
    place: str | None = None
    tags: dict[str, str] | None = None
    token: str | None = None
    wait: float | None = None           # seconds to wait for a held place (None: no limit)
    show_every: float = 30.0


def log(host: str):
    def say(text: str) -> None:
        print(f"vfio-conform fleet: {host}: {text}", flush=True)
    return say


def booked_inventory(inventory: Inventory, units, directory: Path) -> Path:
    """An inventory file holding only the booked units (profiles by absolute path)."""
    names = {d.name for u in units for d in u.devices}
    devices = []
    for dev in inventory.devices:
        if dev.name not in names:
            continue
        entry = {"name": dev.name, "profile": inventory.profiles[dev.profile_name].path}
        if dev.kind == "mdev":
            entry["mdev"] = {k: v for k, v in dataclasses.asdict(dev.mdev).items() if v is not None}
        else:
            entry[dev.kind] = getattr(dev, dev.kind)
        if dev.driver and dev.kind == "pci":
            entry["driver"] = dev.driver
        if dev.peer:
            entry["peer"] = dev.peer
        entry["allow"] = dataclasses.asdict(dev.allow)
        devices.append(entry)
    path = directory / "booked-inventory.yaml"
    path.write_text(yaml.safe_dump({"lease_dir": inventory.lease_dir, "lease_wait": inventory.lease_wait,
                                    "devices": devices}, sort_keys=False))
    return path


class BookedRun:
    """One `fleet run`: book, run the child, release; signals handled in every phase."""

    def __init__(self, opts: FleetOptions, client: LabgridClient | None = None):
        self.opts = opts
        self.say = log(opts.host)
        self.client = client or LabgridClient(opts.coordinator)
        self.booking = Booking(self.client, self.say)
        self.child: subprocess.Popen | None = None
        self.stopped: int | None = None        # the signal that stopped us
        self.recovery: str = ""

    def _on_signal(self, signum, frame) -> None:
        if self.stopped is not None:
            return                              # one signal is enough: cleanup is under way
        self.stopped = signum
        if self.child is not None:              # the run loop waits for the child (bounded)
            if self.child.poll() is None:
                try:
                    os.killpg(self.child.pid, signum)
                except ProcessLookupError:
                    pass
            return
        raise Stopped(signum)

    def run(self) -> int:
        inventory = load_inventory(self.opts.inventory)
        units = [u for u in inventory.units() if not self.opts.profiles or u.profile in self.opts.profiles]
        if not units:
            raise ConfigError(f"no unit of {self.opts.inventory} runs profile(s) "
                              f"{', '.join(self.opts.profiles or [])}")
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            with tempfile.TemporaryDirectory(prefix="vc-fleet-") as tmp:
                return self._run(inventory, units, Path(tmp))
        except Stopped as stop:
            self.say(f"{stop}: stopped while booking; reservations cancelled, places released")
            return EXIT_INFRA
        finally:
            for s in previous:                  # no second signal interrupts the release
                signal.signal(s, signal.SIG_IGN)
            self.booking.release()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _run(self, inventory: Inventory, units, tmp: Path) -> int:
        requests = requests_for(units, self.opts.host, self.opts.place, self.opts.tags, self.opts.token)
        self.booking.book(requests, self.opts.wait, self.opts.show_every)
        self.say(f"booked {', '.join(self.booking.places)}"
                 + (f" (reservation {self.booking.tokens})" if self.booking.tokens else ""))
        path = booked_inventory(inventory, self.booking.units, tmp)
        recovery_file = tmp / "recovery"
        env = dict(os.environ, **{HOST_ENV: self.opts.host, RECOVERY_FILE_ENV: str(recovery_file)})
        for name in ("LG_TOKEN", "LG_PLACE"):   # the child books nothing itself
            env.pop(name, None)
        argv = [sys.executable, "-m", "vfio_conform", "run", "--inventory", str(path), *self.opts.run_args]
        self.child = subprocess.Popen(argv, env=env, start_new_session=True)
        code = self._wait_child(recovery_file)
        if self.recovery:
            self.say(f"host marked for recovery: {self.recovery}")
            self.booking.mark_recovery(self.recovery)
            return EXIT_INFRA
        if self.stopped is not None:
            self.say(f"{signal.Signals(self.stopped).name}: the run was stopped (exit {code}); "
                     f"reservations cancelled, places released")
            return EXIT_INFRA
        return code

    def _wait_child(self, recovery_file: Path) -> int:
        """The child's exit code; a forwarded signal or a hang bounds the wait by STOP_GRACE."""
        child = self.child
        deadline = None
        while True:
            try:
                return child.wait(timeout=0.5 if deadline is None else min(0.5, max(deadline - _now(), 0.01)))
            except subprocess.TimeoutExpired:
                pass
            if not self.recovery and recovery_file.exists():
                self.recovery = recovery_file.read_text(errors="replace").strip().splitlines()[0]
                self.say(f"a device operation hung: {self.recovery}; stopping the run")
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if (self.stopped is not None or self.recovery) and deadline is None:
                deadline = _now() + STOP_GRACE
            if deadline is not None and _now() >= deadline:
                self.say(f"the run did not end within {STOP_GRACE:g}s of the signal: killed")
                kill_group(child)
                return child.returncode if child.returncode is not None else -signal.SIGKILL


def _now() -> float:
    return time.monotonic()


def run_booked(opts: FleetOptions) -> int:
    """Book, run, release; the run's exit code (3 when stopped by a signal or a hang)."""
    try:
        return BookedRun(opts).run()
    except InfraError as exc:
        print(f"vfio-conform fleet: {opts.host}: {exc}", flush=True)
        return EXIT_INFRA
