"""Booking a host's devices through labgrid: reservations, waiting for held places, acquiring, releasing.

What is booked (one `Request` each):

* by default one place per lease unit, the one `fleet places` created (tags host, profile, unit);
* `--place NAME` (or $LG_PLACE): a lab's own place, for every selected unit of the host;
* `--tag KEY=VALUE`: any place with those tags (the lab's tagging), for every selected unit;
* $LG_TOKEN: a reservation the job already holds (made by the lab's tooling): waited for and
  acquired, never cancelled (it is not ours).

A reservation is made without waiting, then waited for by `labgrid-client wait TOKEN` (which
keeps the reservation alive on the coordinator) in a process group of its own, as long as `wait`
seconds (None: no limit), printing who holds the place every `show_every` seconds. Every place
acquired and every reservation made is given back by `Booking.release`, which a signal handler
may also run; after it no labgrid-client of ours runs.
"""
from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import Callable

from ..base.errors import InfraError
from ..hosts.inventory import Unit
from .labgrid import LabgridClient, describe_holders, elapsed_text
from .places import RECOVERY_TAG, unit_tags


@dataclasses.dataclass(frozen=True)
class Request:
    """One reservation to make: the filters it matches places by and the units it runs."""

    filters: dict[str, str]
    units: tuple[Unit, ...]
    token: str = ""             # an existing reservation ($LG_TOKEN): waited for, not made

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.filters.items())) or f"reservation {self.token}"


def requests_for(units: list[Unit], host: str, place: str | None = None,
                 tags: dict[str, str] | None = None, token: str | None = None) -> list[Request]:
    """What to reserve for `units` of `host` (see the module docstring for the precedence)."""
    if token:
        return [Request({}, tuple(units), token)]
    if place:
        return [Request({"name": place}, tuple(units))]
    if tags:
        return [Request(dict(tags), tuple(units))]
    return [Request(unit_tags(host, u), (u,)) for u in units]


class Booking:
    """The reservations made and places acquired so far (release gives them all back)."""

    def __init__(self, client: LabgridClient, log: Callable[[str], None] = print):
        self.client = client
        self.log = log
        self.own_tokens: list[str] = []     # reservations we made (cancelled on release)
        self.places: list[str] = []         # places we acquired (released on release)
        self.units: list[Unit] = []
        self.released = False

    @property
    def tokens(self) -> str:
        return " ".join(self.own_tokens)

    def book(self, requests: list[Request], wait: float | None, show_every: float = 30.0) -> None:
        """Reserve, wait for and acquire each request's place in turn (InfraError on failure)."""
        for req in requests:
            token = req.token
            if not token:
                token = self.client.reserve(req.filters)
                self.own_tokens.append(token)
            self.wait_allocated(token, req, wait, show_every)
            place = self.client.acquire(token)
            self.places.append(place)
            self.check_not_in_recovery(place)
            self.units.extend(req.units)

    def wait_allocated(self, token: str, req: Request, wait: float | None, show_every: float) -> None:
        """Until the coordinator allocates a place to `token` (or `wait` seconds pass: InfraError)."""
        state = self.client.reservation_state(token)
        if state in ("allocated", "acquired"):
            return
        if state is None:
            raise InfraError(f"reservation {token} ({req.label}) is not on the coordinator")
        started = time.monotonic()
        limit = "no limit" if wait is None else f"--wait {elapsed_text(wait)}"
        proc = self.client.start("wait", token)
        try:
            next_show = started
            while True:
                try:
                    proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
                if proc.returncode is not None:
                    break
                waited = time.monotonic() - started
                if wait is not None and waited >= wait:
                    raise InfraError(f"{req.label}: the place is still held after {elapsed_text(waited)} "
                                     f"(--wait {elapsed_text(wait)}): "
                                     f"{describe_holders(self.client.places(), req.filters)}")
                if time.monotonic() >= next_show:
                    self.log(f"waiting for a place ({req.label}), {elapsed_text(waited)} of {limit}: "
                             f"{self._holders(req)}")
                    next_show = time.monotonic() + show_every
        finally:
            self.client.finish(proc)
        state = self.client.reservation_state(token)
        if state not in ("allocated", "acquired"):
            raise InfraError(f"reservation {token} ({req.label}) ended {state or 'gone'} while waiting")

    def _holders(self, req: Request) -> str:
        try:
            return describe_holders(self.client.places(), req.filters) if req.filters else "held"
        except InfraError as exc:         # a message about the wait must not end the wait
            return f"holders unknown ({exc})"

    def check_not_in_recovery(self, place: str) -> None:
        info = self.client.places().get(place) or {}
        mark = info.get("tags", {}).get(RECOVERY_TAG)
        if mark:
            raise InfraError(f"place {place} is marked for recovery ({RECOVERY_TAG}={mark}: "
                             f"{info.get('comment') or ''}); recover the host, then clear it with "
                             f"`labgrid-client -p {place} set-tags {RECOVERY_TAG}=`")

    def mark_recovery(self, what: str) -> None:
        """Tag every booked place for recovery and put `what` in its comment (a hung device)."""
        stamp = time.strftime("%Y%m%dt%H%M%Sz", time.gmtime())
        for place in self.places:
            info = self.client.places().get(place) or {}
            self.client("set-tags", f"{RECOVERY_TAG}={stamp}", place=place, check=False)
            self.client("set-comment", f"NEEDS RECOVERY: {what} | {info.get('comment') or ''}",
                        place=place, check=False)

    def release(self) -> None:
        """Release every acquired place, cancel our reservations, end every labgrid-client of ours."""
        if self.released:
            return
        self.released = True
        self.client.kill_children()
        # a place acquired by one of our reservations whose acquire a signal cut short is
        # released through its token
        for place in [*self.places, *(f"+{t}" for t in self.own_tokens)]:
            try:
                self.client.release(place)
            except InfraError as exc:
                self.log(f"could not release {place}: {exc}")
        for token in self.own_tokens:
            try:
                self.client.cancel(token)
            except InfraError as exc:
                self.log(f"could not cancel reservation {token}: {exc}")
        self.client.kill_children()
