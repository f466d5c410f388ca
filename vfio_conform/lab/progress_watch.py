"""While a guest runs the suites: a line every N seconds on the host naming the guest, its profiles,
tests done / total and the elapsed time (read from the guest run's progress status file)."""
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

    def __init__(self, guest: str, profiles: list[str], status_file: Path,
                 every: float = DEFAULT_EVERY_S, emit=None) -> None:
        self.guest, self.profiles, self.status_file, self.every = guest, profiles, status_file, every
        self.emit = emit or (lambda line: print(line, flush=True))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def read(self) -> dict | None:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None

    def line(self) -> str:
        return progress_line(self.guest, self.profiles, self.read(), time.monotonic() - self._t0)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.emit(self.line())

    def __enter__(self) -> "ProgressWatch":
        self.status_file.unlink(missing_ok=True)        # a status of an earlier boot is not this one's
        if self.every > 0:
            self._thread = threading.Thread(target=self._loop, name="lab-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
