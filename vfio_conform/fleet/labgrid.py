"""labgrid's own client (`labgrid-client`) against one coordinator, as child processes we own.

Every call runs in a process group of its own and is time-limited; a call that outlives its limit
is killed with its whole group. Calls that may block for long (`wait TOKEN`) are started with
`start()`, and `kill_children()` ends every group still running (a signal handler calls it), so
no labgrid process outlives `fleet`. The environment labgrid-client would take a default place or
reservation from (LG_PLACE, LG_TOKEN, ...) is not passed on: every call names its place itself.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading

from ..base.errors import ConfigError, InfraError

#: The labgrid-client command (an installed `labgrid-client`, or this env variable's command line).
CLIENT_ENV = "VFIO_CONFORM_LABGRID_CLIENT"
#: labgrid-client reads these as defaults; the harness names place and token on each call instead.
_SCRUBBED = ("LG_PLACE", "PLACE", "LG_TOKEN", "LG_STATE", "STATE", "LG_INITIAL_STATE", "LG_ENV")
#: Seconds one quick labgrid-client call may take (create, acquire, release, ...; not a wait).
TIMEOUT_ENV = "VFIO_CONFORM_LABGRID_TIMEOUT"
#: Seconds a child group gets between SIGTERM and SIGKILL.
KILL_GRACE = 3.0


def client_command() -> list[str]:
    """How to run labgrid-client: $VFIO_CONFORM_LABGRID_CLIENT, or the installed command."""
    if os.environ.get(CLIENT_ENV):
        return os.environ[CLIENT_ENV].split()
    found = shutil.which("labgrid-client")
    if found:
        return [found]
    raise ConfigError("labgrid-client not found",
                      hint=f"pip install 'vfio-conform[fleet]', or set ${CLIENT_ENV} to its command line")


def _env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        raise ConfigError(f"${name}={os.environ[name]!r}: expected seconds") from None


def kill_group(proc: subprocess.Popen, grace: float = KILL_GRACE) -> None:
    """End a child started in its own process group: SIGTERM, then SIGKILL after `grace` s (bounded)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:                               # the group may outlive its leader (a grandchild)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LabgridClient:
    """labgrid-client against one coordinator (every quick call time-limited; failures are InfraError).

    `timeout` limits one quick call (create, acquire, release, ...); waiting for a place another
    user holds is not a quick call (booking.wait_allocated), and no timeout here caps it.
    """

    def __init__(self, coordinator: str, command: list[str] | None = None, timeout: float | None = None):
        self.coordinator = coordinator
        self.command = command or client_command()
        self.timeout = timeout if timeout is not None else _env_seconds(TIMEOUT_ENV, 60.0)
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def argv(self, *args: str, place: str | None = None) -> list[str]:
        return [*self.command, "-x", self.coordinator, *(["-p", place] if place else []), *args]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in _SCRUBBED}

    def start(self, *args: str, place: str | None = None) -> subprocess.Popen:
        """A long call in a process group of its own (ended by kill_children if still running)."""
        proc = subprocess.Popen(self.argv(*args, place=place), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                env=self.env(), start_new_session=True)
        with self._lock:
            self._children.add(proc)
        return proc

    def finish(self, proc: subprocess.Popen) -> None:
        """End `proc` (if it still runs) and forget it."""
        kill_group(proc)
        with self._lock:
            self._children.discard(proc)

    def kill_children(self) -> None:
        """End every labgrid-client this client started that still runs."""
        with self._lock:
            children = list(self._children)
        for proc in children:
            self.finish(proc)

    def __call__(self, *args: str, place: str | None = None, check: bool = True,
                 timeout: float | None = None) -> str:
        limit = self.timeout if timeout is None else timeout
        proc = self.start(*args, place=place)
        try:
            out, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            raise InfraError(f"labgrid-client {' '.join(args)} did not answer within "
                             f"{limit:.0f}s (coordinator {self.coordinator})") from None
        finally:
            self.finish(proc)
        if check and proc.returncode != 0:
            why = out.strip().splitlines()
            raise InfraError(f"labgrid-client {' '.join(args)} failed: {why[-1] if why else proc.returncode}")
        return out

    # -- places ---------------------------------------------------------------------------------
    def places(self) -> dict[str, dict]:
        """Every place: name -> {'tags': {k: v}, 'acquired': 'host/user' or None, 'comment': str,
        'matches': [..], 'reservation': token or None}."""
        out: dict[str, dict] = {}
        current = None
        section = ""
        for line in self("-v", "places").splitlines():
            head = re.match(r"Place '(.+)':$", line)
            if head:
                current = out[head.group(1)] = {"tags": {}, "acquired": None, "comment": "",
                                                 "matches": [], "reservation": None}
                section = ""
                continue
            if current is None:
                continue
            text = line.strip()
            if line.startswith("    ") and section == "matches":
                current["matches"].append(text)
                continue
            key, _, value = text.partition(": ")
            section = text.rstrip(":")
            if key == "tags":
                current["tags"] = dict(p.split("=", 1) for p in value.split(", ") if "=" in p)
            elif key == "acquired":
                current["acquired"] = None if value in ("None", "") else value
            elif key == "comment":
                current["comment"] = value
            elif key == "reservation":
                current["reservation"] = value or None
        return out

    def reservation_state(self, token: str) -> str | None:
        """The state of reservation `token` ('waiting', 'allocated', 'acquired', ...), None if gone."""
        state, current = None, None
        for line in self("reservations").splitlines():
            head = re.match(r"Reservation '(.+)':$", line)
            if head:
                current = head.group(1)
            elif current == token and line.strip().startswith("state:"):
                state = line.split(":", 1)[1].strip()
        return state

    def reserve(self, filters: dict[str, str]) -> str:
        """A new reservation of one place matching `filters` (not waited for); its token."""
        out = self("reserve", "--shell", *(f"{k}={v}" for k, v in sorted(filters.items())))
        found = re.search(r"LG_TOKEN=(\S+)", out)
        if not found:
            raise InfraError(f"labgrid-client reserve printed no token: {out.strip()[:200]}")
        return found.group(1)

    def acquire(self, token: str) -> str:
        out = self("acquire", place=f"+{token}")
        found = re.search(r"acquired place (\S+)", out)
        if not found:
            raise InfraError(f"labgrid-client acquire printed no place: {out.strip()[:200]}")
        return found.group(1)

    def release(self, place: str) -> None:
        self("release", place=place, check=False)

    def cancel(self, token: str) -> None:
        self("cancel-reservation", token, check=False)


def describe_holders(places: dict[str, dict], filters: dict[str, str]) -> str:
    """Who holds the places a reservation with `filters` waits for: 'hostB-b0 (acquired by lab/ann)'."""
    out = []
    for name, place in sorted(places.items()):
        tags = {**place["tags"], "name": name}
        if all(tags.get(k) == v for k, v in filters.items()):
            who = (f"acquired by {place['acquired']}" if place["acquired"]
                   else "allocated to another reservation" if place.get("reservation") else "free")
            out.append(f"{name} ({who})")
    return ", ".join(out) or "no place matches " + " ".join(f"{k}={v}" for k, v in sorted(filters.items()))


def elapsed_text(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f} min"
