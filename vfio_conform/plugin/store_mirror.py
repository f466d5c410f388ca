"""A consistent copy of the SQLite result store, refreshed every few seconds during a run.

For a store kept on fast local storage whose machine may die: the lab guest writes its store to
its own tmpfs (fast, real file locks) and mirrors it to the results share, so a guest that
crashes mid-run still leaves the host every result up to a few seconds before the crash. Each
copy is SQLite's online backup of the store file (read through a connection of its own, so the
writer never waits) into `<mirror>.part`, then renamed over `<mirror>`: a reader only ever sees a
whole snapshot. Controller only (workers send reports).
"""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from ..results.store import ResultStore

#: Seconds between two snapshots by default: the most a crashed run can lose.
DEFAULT_EVERY_S = 3.0


class StoreMirror:
    """Copies `store` to `path` at most every `every` seconds after a result, and at the end."""

    def __init__(self, store: ResultStore, path: str | os.PathLike, every: float = DEFAULT_EVERY_S,
                 clock=time.monotonic) -> None:
        self.store, self.path, self.every, self.clock = store, Path(path), every, clock
        self.last: float | None = None
        self.copies = 0

    def snapshot(self) -> None:
        """Write one whole copy of the store's committed rows to the mirror path."""
        part = self.path.with_name(self.path.name + ".part")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part.unlink(missing_ok=True)
        source = sqlite3.connect(f"{self.store.path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            dest = sqlite3.connect(part)
            try:
                dest.execute("PRAGMA journal_mode=OFF")     # a scratch file, renamed only when whole
                dest.execute("PRAGMA synchronous=OFF")
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
        os.replace(part, self.path)
        self.last = self.clock()
        self.copies += 1

    def due(self) -> bool:
        return self.last is None or self.clock() - self.last >= self.every

    @pytest.hookimpl(trylast=True)          # after the recorder stored the verdict
    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "teardown" and self.due():
            self.snapshot()

    @pytest.hookimpl(hookwrapper=True)      # after every other plugin closed the run rows
    def pytest_sessionfinish(self, session):
        yield
        self.snapshot()


def register(config, store) -> None:
    """Register a mirror when --vc-store-mirror names one (SQLite stores only)."""
    path = config.getoption("vc_store_mirror", None)
    if not path:
        return
    if not isinstance(store, ResultStore):
        raise pytest.UsageError("vfio-conform: --vc-store-mirror needs a SQLite result store "
                                f"(this run writes {type(store).__name__})")
    every = config.getoption("vc_store_mirror_every")
    mirror = StoreMirror(store, path, DEFAULT_EVERY_S if every is None else every)
    config.pluginmanager.register(mirror, "vfio-conform-store-mirror")
