"""A copy of the SQLite result store, kept where a machine that may die leaves it behind.

For a store on fast local storage (the lab guest's tmpfs: real file locks, no round trip per row)
whose machine may die mid-run: `--vc-store-mirror PATH` copies the store to PATH when the session
starts (the run rows) and when it ends, and appends each result the store records to the journal
(`--vc-store-journal`, default PATH.journal; results/journal.py) with one write. The lab points the
journal at a virtio-serial port whose writes reach the host at once, so a guest that crashes loses
no result: the host replays the journal into the first copy.

A copy is SQLite's online backup of the store file (through a connection of its own) into
PATH.<pid>.part, renamed over PATH: a reader only ever sees a whole copy. Journal lines name the
mirror's file, so several stores may journal into one file (the lab's worker processes, each with
a store of its own). Several runs may also share one store and one mirror: the copy renamed last
was taken last and holds every run. Controller only.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ..results import TestRecord
from ..results.journal import Journal
from ..results.store import ResultStore


def journal_path(mirror: str | os.PathLike) -> Path:
    """Where the results of a mirrored run are journalled."""
    return Path(f"{mirror}.journal")


class StoreMirror:
    """Copies `store` to `path` at session start and end; journals every stored result between."""

    def __init__(self, store: ResultStore, path: str | os.PathLike,
                 journal: str | os.PathLike | None = None) -> None:
        self.store, self.path = store, Path(path)
        self.journal_file = Path(journal) if journal else journal_path(path)
        self.journal: Journal | None = None
        self.copies = 0

    def snapshot(self) -> None:
        """Write one whole copy of the store's committed rows to the mirror path."""
        part = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")   # several runs may mirror
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
        self.copies += 1

    def stored(self, run_id: int, rec: TestRecord) -> None:
        """The recorder stored `rec` in run `run_id`: journal it."""
        if self.journal is not None:
            self.journal.append(run_id, rec)

    def pytest_sessionstart(self, session) -> None:
        self.snapshot()                     # the run rows begun in pytest_configure
        self.journal = Journal(self.journal_file, source=self.path.name)

    @pytest.hookimpl(hookwrapper=True)      # after every other plugin closed the run rows
    def pytest_sessionfinish(self, session):
        yield
        self.snapshot()
        if self.journal is not None:
            self.journal.close()


def _run_keys(path: Path) -> set[tuple[int, str]] | None:
    """(id, session) of every run of the SQLite store at `path`; None when it is not one."""
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone():
            empty = not db.execute("SELECT 1 FROM sqlite_master").fetchone()
            return set() if empty else None
        return {(int(i), str(s)) for i, s in db.execute("SELECT id, session FROM runs")}
    except sqlite3.Error:
        return None
    finally:
        db.close()


def check_mirror(store: str | os.PathLike | None, mirror: str | os.PathLike) -> None:
    """Refuse (ConfigError) a mirror path that is not a copy of `store`: a directory or another
    kind of file, or a store holding runs `store` does not have (it would be overwritten)."""
    from ..base.errors import ConfigError
    from ..base.outfile import check_file
    mirror = Path(mirror)
    check_file(mirror, "--store-mirror", create_parents=True)
    if mirror.is_symlink() or (mirror.exists() and not mirror.is_file()):
        raise ConfigError(f"--store-mirror {mirror}: is not a regular file (the copy is renamed over "
                          "it: a device, FIFO or symlink would be replaced)")
    if not mirror.exists() or mirror.stat().st_size == 0:
        return
    theirs = _run_keys(mirror)
    if theirs is None:
        raise ConfigError(f"--store-mirror {mirror}: holds something else than a vfio-conform store "
                          "(it would be overwritten)")
    source = Path(str(store).removeprefix("sqlite://")) if store else None
    ours = _run_keys(source) if source is not None and source.is_file() else set()
    other = sorted(theirs - (ours or set()))
    if other:
        runs = ", ".join(f"#{i}" for i, _ in other[:5]) + (" ..." if len(other) > 5 else "")
        raise ConfigError(f"--store-mirror {mirror}: holds {len(other)} run(s) that are not in the store "
                          f"({runs}); a mirror is a copy of one store and would overwrite them")


def register(config, store, recorder) -> None:
    """Register a mirror when --vc-store-mirror names one (SQLite stores only)."""
    path = config.getoption("vc_store_mirror", None)
    if not path:
        return
    if not isinstance(store, ResultStore):
        raise pytest.UsageError("vfio-conform: --vc-store-mirror needs a SQLite result store "
                                f"(this run writes {type(store).__name__})")
    mirror = StoreMirror(store, path, config.getoption("vc_store_journal", None))
    recorder.listeners.append(mirror.stored)
    config.pluginmanager.register(mirror, "vfio-conform-store-mirror")
