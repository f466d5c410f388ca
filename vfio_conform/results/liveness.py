"""Is a `running` run still running? Judged from the host, boot id and pid it recorded."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from .model import Reason, RunStatus

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot's id ('' where the kernel does not provide one)."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this host (a reused pid also counts: the safe side)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Here:
    """The identity a run is judged against: this host's name and boot id."""

    def __init__(self, host: str | None = None, boot: str | None = None, alive=pid_alive):
        self.host = socket.gethostname() if host is None else host
        self.boot = boot_id() if boot is None else boot
        self.alive = alive


def judge(run: dict, here: Here) -> tuple[str, str]:
    """(status, reason) of a stored run row as it stands now.

    A `running` run is `incomplete` when it was written on this host and either the host has
    rebooted since (other boot id) or its process is gone. Runs of other hosts, and rows from
    stores that predate pid/boot id recording, are left as they are: nothing proves them dead.
    Older stores' 'interrupted' and 'crashed' statuses read as incomplete with that reason.
    """
    status, reason = run.get("status") or RunStatus.RUNNING.value, run.get("reason") or ""
    if status in (Reason.INTERRUPTED.value, Reason.CRASHED.value):
        return RunStatus.INCOMPLETE.value, status
    if status != RunStatus.RUNNING.value:
        return status, reason
    pid, boot = int(run.get("pid") or 0), run.get("boot_id") or ""
    if not pid or run.get("host") != here.host:
        return status, reason
    if boot and here.boot and boot != here.boot:
        return RunStatus.INCOMPLETE.value, Reason.HOST_RESTARTED.value
    if not here.alive(pid):
        return RunStatus.INCOMPLETE.value, Reason.KILLED.value
    return status, reason
