"""Progress of a long run without flooding a log: a line every N seconds, and a status file.

Registered by `vfio-conform run` (controller only). The line names the profile of the latest
result, tests done / total and the elapsed time; the status file (`<progress-file>.json`, beside
the lab's per-test progress file) holds the same as JSON for a watcher such as the lab host.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from . import classify

#: Seconds between two progress lines by default (a CI log gets a few lines per hour-long run).
DEFAULT_EVERY_S = 30.0
#: Seconds between two rewrites of the status file (it may live on a slow 9p share).
STATUS_EVERY_S = 2.0


def status_path(progress_file: str) -> str:
    """Where the JSON status goes for a given --progress-file."""
    return progress_file + ".json"


def elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 \
        else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """`every` seconds between lines (0: no lines); `status_file`: JSON status path or None."""

    def __init__(self, every: float = DEFAULT_EVERY_S, status_file: str | None = None,
                 clock=time.monotonic) -> None:
        self.every, self.status_file, self.clock = every, status_file, clock
        self.t0 = clock()
        self.last_line = self.last_status = self.t0
        self.total: int | None = None
        self.done = 0
        self.profile = ""
        self.per_profile: dict[str, int] = {}
        self.config = None

    def pytest_configure(self, config) -> None:
        self.config = config

    def pytest_collection_finish(self, session) -> None:
        if not session.config.pluginmanager.has_plugin("dsession"):
            self.total = len(session.items)
            self._status(force=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if self.total is None:          # every worker collects the same tests
            self.total = len(ids)
            self._status(force=True)

    @pytest.hookimpl(trylast=True)          # after the terminal reporter wrote its dot or line
    def pytest_runtest_logreport(self, report) -> None:
        rec = classify.record_of(report)
        if rec is not None and rec.profile:
            self.profile = rec.profile
        if report.when != "teardown":
            return
        self.done += 1
        if self.profile:
            self.per_profile[self.profile] = self.per_profile.get(self.profile, 0) + 1
        now = self.clock()
        if self.every and now - self.last_line >= self.every:
            self.last_line = now
            self._line(self.text())
        self._status()

    def pytest_sessionfinish(self, session) -> None:
        self._status(force=True, finished=True)

    def text(self) -> str:
        total = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.done // self.total}%)" if self.total else ""
        return (f"vfio-conform: progress: {self.done}{total} tests{pct}, profile {self.profile or '-'}, "
                f"elapsed {elapsed_text(self.clock() - self.t0)}")

    def _line(self, text: str) -> None:
        writer = self.config.pluginmanager.get_plugin("terminalreporter") if self.config else None
        if writer is not None:
            tw = getattr(writer, "_tw", None)       # -q dots end without a newline
            if tw is not None and getattr(tw, "width_of_current_line", 0):
                writer.write("\n")
            writer.write_line(text)
        else:
            print(text, flush=True)

    def _status(self, force: bool = False, finished: bool = False) -> None:
        if not self.status_file:
            return
        now = self.clock()
        if not force and now - self.last_status < STATUS_EVERY_S:
            return
        self.last_status = now
        doc = {"done": self.done, "total": self.total, "profile": self.profile,
               "per_profile": self.per_profile, "elapsed": round(now - self.t0, 1),
               "finished": finished}
        tmp = f"{self.status_file}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self.status_file)
        except OSError:             # progress is advisory: never fail a run over it
            pass
