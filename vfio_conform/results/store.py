"""SQLite result store: one row per run, one per test, committed as they come (a kill loses nothing)."""
from __future__ import annotations

import errno
import os
import sqlite3
import time
import urllib.parse
from pathlib import Path

from ..base.constants import STORE_SYNC_ENV, STORE_WAIT_ENV
from .liveness import Here
from .sql import ADDED_RESULT_COLUMNS, ADDED_RUN_COLUMNS, SqlStore, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL, profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT,
    kernel TEXT, harness_version TEXT, host TEXT, argv TEXT,
    started REAL NOT NULL, ended REAL, status TEXT NOT NULL DEFAULT 'running',
    profile_hash TEXT, firmware TEXT, reason TEXT, pid INTEGER, boot_id TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    nodeid TEXT NOT NULL, test_id TEXT NOT NULL, outcome TEXT NOT NULL,
    duration REAL, message TEXT, rule TEXT, link TEXT, recorded REAL NOT NULL,
    rules TEXT, arc_from TEXT, arc_to TEXT, should TEXT, devices TEXT, waiver_index INTEGER,
    waiver_reason TEXT, hazard TEXT
);
CREATE INDEX IF NOT EXISTS results_run ON results(run_id);
CREATE INDEX IF NOT EXISTS runs_profile ON runs(profile);
"""

#: Seconds a writer waits for another process's lock before the store counts as unusable.
WAIT_ENV = STORE_WAIT_ENV


class ResultStore(SqlStore):
    """Append-only store of runs and test results in one SQLite file.

    Args:
        path: SQLite file (created with its directory unless `readonly`).
        readonly: open for reading only (works on read-only media; never changes the file).
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False, here: Here | None = None):
        self.path = Path(path)
        self.url = str(self.path)
        self.readonly = readonly
        self.here = here or Here()
        if self.path.is_dir():
            raise StoreError(f"result store {self.url}: is a directory, not a SQLite file")
        try:
            self.db = self._connect()
            if not readonly:
                _retry_busy(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
                self.db.execute(f"PRAGMA synchronous={_sync_mode()}")
                self._create_schema()
                self.db.execute("BEGIN IMMEDIATE")    # can we take the write lock (within the wait)?
                self.db.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as exc:
            if not readonly and _on_read_only_media(self.path):
                raise StoreError(f"result store {self.url}: is on read-only media (results/report/diff "
                                 f"can still read it) [{type(exc).__name__}: {exc}]") from None
            raise StoreError(_explain(self.url, exc)) from None
        if not readonly:
            self.reap()

    def _create_schema(self) -> None:
        """Create or bring up to date the tables, in one write transaction: two runs opening a new
        store at once must not both add the same column."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for table, added in (("runs", ADDED_RUN_COLUMNS), ("results", ADDED_RESULT_COLUMNS)):
                have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                for name, kind in added:
                    if name not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _connect(self) -> sqlite3.Connection:
        wait = _wait_seconds()
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, timeout=wait, isolation_level=None)
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}"
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=wait, isolation_level=None)
        try:
            _probe(db)
        except sqlite3.OperationalError:
            # A WAL store on read-only media has no -shm we could create: read the file as it is.
            db.close()
            db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
            _probe(db)
        return db

    def _execute(self, sql: str, args: tuple = ()):
        try:
            return self.db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(_explain(self.url, exc)) from None

    def _insert(self, table: str, row: dict) -> int:
        cur = self._execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                            f"({', '.join('?' * len(row))})", tuple(row.values()))
        return int(cur.lastrowid)


def _on_read_only_media(path: Path) -> bool:
    where = path if path.exists() else path.parent
    try:
        return bool(os.statvfs(where).f_flag & os.ST_RDONLY) or not os.access(where, os.W_OK)
    except OSError:
        return False


def _retry_busy(step, poll: float = 0.05):
    """Run `step` again while the file is busy, up to the store's wait: switching a new file to WAL
    does not go through SQLite's busy handler, so two runs creating one store at once would fail."""
    deadline = time.monotonic() + _wait_seconds()
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
            time.sleep(poll)


def _probe(db: sqlite3.Connection) -> None:
    db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()


def _explain(url: str, exc: BaseException) -> str:
    """One line: which store, and what is wrong with it."""
    text = str(exc)
    low = text.lower()
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "disk is full" in low:
        what = "the disk is full"
    elif "not a database" in low or "malformed" in low:
        what = "is not a SQLite database (corrupt, or another kind of file)"
    elif "readonly" in low or "read-only" in low or (isinstance(exc, OSError)
                                                      and exc.errno in (errno.EROFS, errno.EACCES)):
        what = "is read-only (results/report/diff can still read it)"
    elif "locked" in low or "busy" in low:
        what = (f"is locked by another process (waited {_wait_seconds():g} s; "
                f"set {WAIT_ENV} to wait longer)")
    elif "no such table" in low:
        what = "is not a vfio-conform result store (no runs table)"
    elif "unable to open" in low:
        what = "cannot be opened (missing directory or no permission)"
    else:
        what = text.splitlines()[0] if text else type(exc).__name__
    return f"result store {url}: {what} [{type(exc).__name__}: {text.splitlines()[0] if text else ''}]"


def _wait_seconds() -> float:
    try:
        return float(os.environ.get(WAIT_ENV, "30"))
    except ValueError:
        raise StoreError(f"{WAIT_ENV}={os.environ[WAIT_ENV]!r}: expected seconds") from None


#: Durability of each committed row: NORMAL survives a killed process; FULL (fsync per row)
#: also survives a dead kernel (a host whose store is on a disk it may lose power to).
SYNC_ENV = STORE_SYNC_ENV


def _sync_mode() -> str:
    mode = os.environ.get(SYNC_ENV, "NORMAL").upper()
    if mode not in ("NORMAL", "FULL", "EXTRA"):
        raise StoreError(f"{SYNC_ENV}={mode!r}: expected NORMAL, FULL or EXTRA")
    return mode
