"""SQLite result store: one row per run, one per test, committed as they come (a kill loses nothing)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .sql import ADDED_RUN_COLUMNS, SqlStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL, profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT,
    kernel TEXT, harness_version TEXT, host TEXT, argv TEXT,
    started REAL NOT NULL, ended REAL, status TEXT NOT NULL DEFAULT 'running',
    profile_hash TEXT, firmware TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    nodeid TEXT NOT NULL, test_id TEXT NOT NULL, outcome TEXT NOT NULL,
    duration REAL, message TEXT, rule TEXT, link TEXT, recorded REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_run ON results(run_id);
CREATE INDEX IF NOT EXISTS runs_profile ON runs(profile);
"""


class ResultStore(SqlStore):
    """Append-only store of runs and test results in one SQLite file.

    Args:
        path: SQLite file (created with its directory).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.url = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={_sync_mode()}")
        self.db.executescript(_SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
        for name, kind in ADDED_RUN_COLUMNS:
            if name not in have:
                self.db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")

    def _execute(self, sql: str, args: tuple = ()):
        return self.db.execute(sql, args)

    def _insert(self, table: str, row: dict) -> int:
        cur = self.db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                              f"({', '.join('?' * len(row))})", tuple(row.values()))
        return int(cur.lastrowid)


#: Durability of each committed row: NORMAL survives a killed process; FULL (fsync per row)
#: also survives a dead kernel, which the lab needs (its guest writes to a 9p share and may panic).
SYNC_ENV = "VFIO_CONFORM_STORE_SYNC"


def _sync_mode() -> str:
    mode = os.environ.get(SYNC_ENV, "NORMAL").upper()
    if mode not in ("NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"{SYNC_ENV}={mode!r}: expected NORMAL, FULL or EXTRA")
    return mode
