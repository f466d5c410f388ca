"""While a guest runs the suites: a line every N seconds on the host naming the guest, its profiles,
tests done / total and the elapsed time (read from the status files of the guest's processes)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ..plugin.progress import DEFAULT_EVERY_S, elapsed_text


def progress_line(guest: str, profiles: list[str], status: dict | None, elapsed: float) -> str:
    """One line; `status` is the guest's JSON status (None: the suites have not started yet)."""
    head = f"vfio-conform lab: {guest} guest ({', '.join(profiles)}): "
    if not status:
        return head + f"booting / setting up devices, elapsed {elapsed_text(elapsed)}"
    total = status.get("total")
    done = int(status.get("done") or 0)
    count = f"{done}/{total} tests ({100 * done // total}%)" if total else f"{done} tests"
    return head + f"{count}, profile {status.get('profile') or '-'}, elapsed {elapsed_text(elapsed)}"


class ProgressWatch:
    """Context manager: a daemon thread printing progress_line() every `every` seconds."""

    def __init__(self, guest: str, profiles: list[str], status_files: list[Path],
                 every: float = DEFAULT_EVERY_S, emit=None) -> None:
        self.guest, self.profiles, self.every = guest, profiles, every
        self.status_files = list(status_files)
        self.emit = emit or (lambda line: print(line, flush=True))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def read(self) -> dict | None:
        """The status of the guest's run: each process's, summed (None before any started)."""
        statuses = []
        for path in self.status_files:
            try:
                statuses.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        if not statuses:
            return None
        totals = [s.get("total") for s in statuses]
        return {"total": sum(totals) if len(statuses) == len(self.status_files) and all(totals) else None,
                "done": sum(int(s.get("done") or 0) for s in statuses),
                "profile": ", ".join(s["profile"] for s in statuses if s.get("profile"))}

    def line(self) -> str:
        return progress_line(self.guest, self.profiles, self.read(), time.monotonic() - self._t0)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.emit(self.line())

    def __enter__(self) -> "ProgressWatch":
        for path in self.status_files:      # a status of an earlier boot is not this one's
            path.unlink(missing_ok=True)
        if self.every > 0:
            self._thread = threading.Thread(target=self._loop, name="lab-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
